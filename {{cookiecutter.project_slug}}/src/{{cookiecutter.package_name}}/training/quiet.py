"""Lightning's chatter during a run, turned down while ``train`` runs and put back afterwards.

Its start-up lines ("GPU available: False ...") are replaced by train's own one-line summaries, and
its hints about worker counts are handled by ``device.choose_device``. Nothing is changed by importing
a module: code that imports the project (tests, benchmarks, a notebook) keeps its own settings.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

# Warnings that say nothing a user of this project can act on.
EXPECTED_WARNINGS = (
    ".*does not have many workers.*",  # choose_device picks the workers on purpose
    ".*smaller than the logging interval.*",  # small datasets have few steps an epoch
    ".*overridden `on_after_batch_transfer`.*",  # intended: see Classifier.on_after_batch_transfer
    ".*callbacks used to create the checkpoint need to be provided.*",  # evaluating best.ckpt needs none
    ".*LeafSpec.*",  # a Lightning/PyTorch version mismatch, harmless
    ".*exists and is not empty.*",  # --resume writes into the run's own checkpoints folder
    # After the LR finder's search the frozen backbone is still in eval mode; every epoch sets it (model/classifier.py).
    r".*module\(s\) in eval mode at the start of training.*",
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within this block Lightning logs only warnings and the expected warnings above are not shown."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message)
            yield
    finally:
        logger.setLevel(level)
