"""Validation and test: what they measure, and the predictions kept for what the run shows.

``EvaluationSteps`` gives the Classifier (model.py) its validation and test steps: the cross-entropy
loss, accuracy and macro F1 of each split, logged as ``val/...`` and ``test/...`` (macro F1 counts every
class equally and picks best.ckpt). ``validation_step`` returns each batch's probabilities, true
classes, losses and image indices; ``ValidationResults`` puts them together after the pass, for
TensorBoard's pictures, metrics.json's per-class scores and report.md. With several processes each
one validated a share of the images, so the shares are gathered first: every process ends with the
whole val set.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from {{ cookiecutter.package_name }}.training.processes import gather_predictions


class EvaluationSteps:
    """Validation and test steps for a LightningModule whose ``forward`` gives class logits."""

    def add_scores(self, num_classes: int) -> None:
        """The metrics of validation and test; call it from ``__init__``."""
        # validate_args=False: our labels are always valid, and the checks would make the CPU wait for the GPU.
        metric_args = {"num_classes": num_classes, "validate_args": False}
        self.val_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.val_f1 = MulticlassF1Score(average="macro", **metric_args)
        self.test_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.test_f1 = MulticlassF1Score(average="macro", **metric_args)

    def _evaluate(self, batch, stage: str, accuracy, f1) -> torch.Tensor:
        images, labels, indices = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none")
        accuracy(logits, labels)
        f1(logits, labels)
        self.log(f"{stage}/loss", losses.mean(), on_epoch=True, batch_size=len(labels), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_epoch=True, prog_bar=stage == "val")
        self.log(f"{stage}/f1_macro", f1, on_epoch=True, prog_bar=stage == "val")
        return logits, losses, labels, indices

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Called by Lightning for every validation batch; its predictions go to ``ValidationResults`` below."""
        logits, losses, labels, indices = self._evaluate(batch, "val", self.val_acc, self.val_f1)
        return {"probs": logits.float().softmax(1), "targets": labels, "losses": losses, "indices": indices}

    def test_step(self, batch, batch_idx: int) -> None:
        """Called by Lightning's ``trainer.test`` for every batch of the test split."""
        self._evaluate(batch, "test", self.test_acc, self.test_f1)


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

