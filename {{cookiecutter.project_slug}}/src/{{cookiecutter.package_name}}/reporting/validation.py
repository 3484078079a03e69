"""The predictions of each validation pass, kept for what the run shows.

The Classifier's ``validation_step`` (model/classifier.py) returns each batch's probabilities, true
classes, losses and image indices; ``ValidationResults`` puts them together after the pass, for
TensorBoard's pictures, metrics.json's per-class scores and report.md. With several processes each
one validated a share of the images, so the shares are gathered first: every process ends with the
whole val set.
"""

from __future__ import annotations

import lightning as L
import torch

from {{ cookiecutter.package_name }}.training.processes import gather_predictions


class ValidationResults(L.Callback):
    """``results``: probs (N, classes), targets, losses and indices (into the val split) of the last pass."""

    def __init__(self) -> None:
        self.results: dict[str, torch.Tensor] = {}
        self._outputs: list[dict[str, torch.Tensor]] = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning before each validation pass."""
        self._outputs = []

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called by Lightning after every validation batch, with what ``validation_step`` returned."""
        self._outputs.append(outputs)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning after each validation pass: the epoch's predictions in one place."""
        if self._outputs:
            results = {k: torch.cat([o[k] for o in self._outputs]) for k in self._outputs[0]}
            if trainer.world_size > 1:
                results = gather_predictions(pl_module, results)
            self.results = {k: v.cpu() for k, v in results.items()}
        self._outputs = []

