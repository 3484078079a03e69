"""How fast a run trains: images per second, data loading included, once per epoch."""

from __future__ import annotations

import time

import lightning as L


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
