"""What TensorBoard shows besides the loss curves: what the model sees, where it is wrong, and its scores.

Open it with ``tensorboard --logdir runs``. TensorBoard groups tags by the part before the "/":

    Images   train/batch_preview      one augmented training batch, as the model sees it (at the start)
             train/lr_finder          the learning-rate finder's curve (only with --lr auto)
             val/confusion_matrix     rows: true class, columns: predicted class (after validation)
             val/predictions          the same validation photos every epoch; green = right, red = wrong
             val/worst_predictions    the validation photos with the highest loss (best checkpoint, at the end)
    Text     val/per_class_scores     precision, recall, F1 and number of photos for every class
             val_best/scores          the best checkpoint's scores, as a small table (at the end)
    HParams  val_best/acc, ...        the settings of each run next to its best checkpoint's scores

Time Series sorts its groups by name and shows every scalar as a card, so the ``train/`` and ``val/``
curves must sort first: the best checkpoint's one-point scores are named ``val_best/``, the learning
rates ``weights_learning_rate/``, and Lightning's ``epoch`` counter (a staircase that would open the page)
is not logged (``CurvesFirstLogger``).

Drawing pictures costs time, so it happens at most once per epoch, after validation, on a fixed small
sample; an epoch is skipped when drawing has already used more than ``DRAWING_BUDGET`` of the run's time
(the last epoch is always drawn). It happens between epochs, not in a background thread during them:
a drawing thread competes with training for Python's interpreter lock at every step, which on a few
CPU cores costs far more than the drawing itself.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from {{ cookiecutter.package_name }}.reporting.pictures import RIGHT, WRONG, captioned_grid, confusion_matrix_image, denormalise
from {{ cookiecutter.package_name }}.reporting.scores import confusion_matrix, per_class_table
from {{ cookiecutter.package_name }}.reporting.validation import ValidationResults

PREVIEW_IMAGES = 16  # training images in the batch preview
SAMPLE_IMAGES = 16  # validation images in the predictions grid (the same ones every epoch)
WORST_IMAGES = 16  # highest-loss validation images shown at the end
DRAWING_BUDGET = 0.03  # at most 3% of the run's time goes into drawing pictures


class CurvesFirstLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger without the ``epoch`` scalar it adds to every log call: its group
    would sort first in Time Series, above the curves (the x axis already counts steps)."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics({key: value for key, value in metrics.items() if key != "epoch"}, step)
# The best checkpoint's scores in HParams and the text summary, from metrics.json, with their names there.
BEST_SCORES = {"val_acc": "val accuracy", "val_f1_macro": "val macro F1", "val_loss": "val loss",
               "test_acc": "test accuracy"}


# ---- the callback ---------------------------------------------------------------------------------
class Dashboard(L.Callback):
    """Logs the pictures and tables described above; also keeps each epoch's scores for report.md."""

    def __init__(self, validation: ValidationResults) -> None:
        self.validation = validation  # the last validation pass's predictions (validation.py)
        self.history: list[dict[str, float]] = []  # one row per epoch: train/val accuracy and loss
        self._sample: tuple[list[int], torch.Tensor] | None = None  # val indices and their images
        self._preview_done = False
        self._started = 0.0
        self._drawing_seconds = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning when fit begins: start the budget's clock."""
        self._started, self._drawing_seconds, self._preview_done = time.perf_counter(), 0.0, False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Called by Lightning before every training step; the very first batch becomes the preview."""
        if self._preview_done:  # the usual case, checked first: this hook runs at every step
            return
        writer = tensorboard_writer(trainer)
        if not trainer.is_global_zero or writer is None:
            return
        self._preview_done = True
        images, labels, _ = batch
        images = denormalise(images[:PREVIEW_IMAGES], pl_module.mean, pl_module.std)
        names = pl_module.hparams.class_names
        captions = [[names[label]] for label in labels[:PREVIEW_IMAGES].tolist()]
        step = trainer.global_step

        self._timed(lambda: writer.add_image("train/batch_preview", captioned_grid(images, captions), step))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning after each validation pass (its predictions are in ``self.validation``)."""
        results, writer = self.validation.results, tensorboard_writer(trainer)
        if trainer.sanity_checking or not trainer.is_global_zero or not results or writer is None:
            return
        step, epoch, names = trainer.global_step, trainer.current_epoch + 1, pl_module.hparams.class_names
        writer.add_text("val/per_class_scores", per_class_table(results, names), step)

        last_epoch = epoch >= trainer.max_epochs
        over_budget = self._drawing_seconds > DRAWING_BUDGET * (time.perf_counter() - self._started)
        if over_budget and not last_epoch:  # the last epoch is always drawn
            return

        def draw() -> None:
            sample = self._validation_sample(trainer)
            matrix = confusion_matrix(results, len(names))
            picture = confusion_matrix_image(matrix, names, f"Confusion matrix, validation, epoch {epoch}")
            writer.add_image("val/confusion_matrix", np.asarray(picture), step, dataformats="HWC")
            writer.add_image("val/predictions", predictions_grid(sample, results, names), step)

        self._timed(draw)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning at the end of each training epoch (validation has run): remember the scores."""
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if value.numel() == 1}
        row = {"epoch": trainer.current_epoch + 1}
        for key in ("train/acc", "train/loss_epoch", "val/acc", "val/loss", "val/f1_macro"):
            if key in metrics:
                row[key.replace("/", "_").removesuffix("_epoch")] = round(metrics[key], 4)
        self.history.append(row)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint, so a resumed run's report still knows the earlier epochs."""
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called by Lightning when resuming from a checkpoint."""
        self.history = list(state_dict.get("history", []))

    def _validation_sample(self, trainer: L.Trainer) -> tuple[list[int], torch.Tensor]:
        """A fixed set of validation images, loaded once: the same photos every epoch show progress."""
        if self._sample is None:
            dataset = trainer.datamodule.datasets["val"]
            indices = spread_indices(len(dataset), SAMPLE_IMAGES)
            self._sample = indices, torch.stack([dataset[i][0] for i in indices])
        return self._sample

    def _timed(self, draw) -> None:
        """Draw now, and add the time it took to the budget."""
        started = time.perf_counter()
        draw()
        self._drawing_seconds += time.perf_counter() - started


def predictions_grid(sample: tuple[list[int], torch.Tensor], results: dict[str, torch.Tensor],
                     names: list[str]) -> torch.Tensor:
    """The sample's images with their true and predicted class, framed green (right) or red (wrong)."""
    indices, images = sample
    row_of = {index: row for row, index in enumerate(results["indices"].tolist())}
    shown, captions, colours = [], [], []
    for image, index in zip(images, indices, strict=True):
        if index not in row_of:  # with several GPUs each one only sees part of the validation set
            continue
        row = row_of[index]
        true, predicted = int(results["targets"][row]), int(results["probs"][row].argmax())
        probability = float(results["probs"][row, predicted])
        shown.append(image)
        captions.append([f"true: {names[true]}", f"predicted: {names[predicted]}", f"{probability:.0%} sure"])
        colours.append(RIGHT if predicted == true else WRONG)
    return captioned_grid(torch.stack(shown), captions, colours)


def spread_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(length)``: the val set is sorted by class, so this
    picks photos of many classes, and the same ones every time."""
    if length <= count:
        return list(range(length))
    return sorted({round(i * (length - 1) / (count - 1)) for i in range(count)})


def log_final_results(trainer: L.Trainer, results: dict[str, torch.Tensor], names: list[str],
                      config: dict[str, Any], metrics: dict) -> None:
    """After the best checkpoint is evaluated: its worst predictions (``results``: that validation), and
    the HParams entry of the run."""
    writer = tensorboard_writer(trainer)
    if writer is None or not trainer.is_global_zero:
        return
    step = trainer.global_step
    dataset = trainer.datamodule.datasets["val"]
    worst = results["losses"].argsort(descending=True)[:WORST_IMAGES].tolist()
    images, captions, colours = [], [], []
    for row in worst:
        index = int(results["indices"][row])
        true, predicted = int(results["targets"][row]), int(results["probs"][row].argmax())
        images.append(dataset[index][0])
        captions.append([dataset.samples[index].path.name, f"true: {names[true]}", f"predicted: {names[predicted]}",
                         f"{float(results['probs'][row, predicted]):.0%} sure"])
        colours.append(RIGHT if predicted == true else WRONG)
    if images:
        writer.add_image("val/worst_predictions", captioned_grid(torch.stack(images), captions, colours), step)
    # The HParams tab lists every run with its settings and these scores, to compare runs side by side.
    # It reads each score from a scalar of that name, so they are scalars too (one point, at the end).
    scores = {f"val_best/{key.removeprefix('val_')}": metrics[key] for key in BEST_SCORES
              if metrics.get(key) is not None}
    writer.add_text("val_best/scores", best_scores_table(metrics), step)
    hparams = {key: "none" if value is None else value for key, value in config.items()}
    trainer.logger.log_hyperparams(hparams, scores, step=step)
    trainer.logger.finalize("success")  # write everything to disk now


def best_scores_table(metrics: dict) -> str:
    """The best checkpoint's scores as a markdown table for TensorBoard's Text tab."""
    rows = [f"| {name} | {metrics[key]:.1%} |" if key.endswith("acc") else f"| {name} | {metrics[key]:.3f} |"
            for key, name in BEST_SCORES.items() if metrics.get(key) is not None]
    return "\n".join(["| best checkpoint | score |", "| --- | ---: |", *rows])


def tensorboard_writer(trainer: L.Trainer):
    """TensorBoard's SummaryWriter, or None when the trainer logs elsewhere."""
    experiment = getattr(trainer.logger, "experiment", None)
    return experiment if hasattr(experiment, "add_image") else None
