"""Small Lightning add-ons: a callback that measures the run, and how checkpoints are written."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class ImagesPerSecond(L.Callback):
    """Logs training throughput (images per second, data loading included) once per epoch."""

    def __init__(self) -> None:
        self.history: list[float] = []
        self._start = self._end = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called at the start of each training epoch."""
        self._start, self._images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Called after every training step; counting images needs no GPU sync."""
        self._images += len(batch[1])
        self._end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called at the end of each training epoch; the clock stopped at its last batch, before validation."""
        seconds = self._end - self._start
        if self._images and seconds > 0:
            rate = self._images * trainer.world_size / seconds
            self.history.append(rate)
            pl_module.log("train/images_per_s", rate, rank_zero_only=True)


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
