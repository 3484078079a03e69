"""Checkpoints, written so that a crash never leaves half of one.

    runs/<name>/checkpoints/best.ckpt   the epoch with the best validation macro F1
    runs/<name>/checkpoints/last.ckpt   the latest epoch (what --resume continues from)

Reading one back is the model's job (model/checkpoint.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO


def best_and_last(folder: Path) -> list[ModelCheckpoint]:
    """Lightning callbacks that write checkpoints/best.ckpt (best validation macro F1) and last.ckpt."""
    best = ModelCheckpoint(
        dirpath=folder,
        filename="best",
        monitor="val/f1_macro",
        mode="max",
        enable_version_counter=False,  # overwrite best.ckpt instead of writing best-v1.ckpt
    )
    # checkpoints/last.ckpt after every epoch, what --resume uses. A checkpoint of its own: Lightning's
    # save_last=True only rewrites last.ckpt in epochs that also improved best.ckpt. In those epochs
    # SafeCheckpointIO makes last.ckpt a hard link to best.ckpt, so each epoch is written once.
    latest = ModelCheckpoint(dirpath=folder, filename="last", enable_version_counter=False)
    return [best, latest]


class SafeCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints so that a crash, even ``kill -9``, never leaves a half-written one, and
    writes each epoch once.

    Each file is written next to its final name and then renamed into place, which the operating
    system does in one step: readers (``--resume``) find the previous checkpoint or the new one, never a
    mix. When best.ckpt and last.ckpt hold the same epoch (the epoch was the best so far), the second
    becomes a hard link to the first instead of a second copy. Lightning's ``AsyncCheckpointIO`` runs
    this in a background thread, so training goes on while the file is written (see train.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self._previous: tuple[Any, Path] | None = None  # (global step, file) of the last checkpoint written

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        """Called by Lightning (through AsyncCheckpointIO's thread) for every checkpoint to write."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        # A leftover from a killed run may be a hard link to another checkpoint: remove it, never overwrite it.
        temporary.unlink(missing_ok=True)
        step = checkpoint.get("global_step")
        previous = self._previous
        if previous and previous[0] == step and previous[1] != path and previous[1].is_file():
            try:
                os.link(previous[1], temporary)
            except OSError:  # a file system without hard links
                shutil.copyfile(previous[1], temporary)
        else:
            with open(temporary, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())  # on disk before the rename, so a power cut cannot leave an empty file
        os.replace(temporary, path)
        self._previous = (step, path)
