"""What TensorBoard shows besides the loss curves: what the model sees, where it is wrong, and its scores.

Open it with ``tensorboard --logdir runs``. TensorBoard groups tags by the part before the "/":

    Images   train/batch_preview      one augmented training batch, as the model sees it (at the start)
             train/lr_finder          the learning-rate finder's curve (only with --lr auto)
             val/confusion_matrix     rows: true class, columns: predicted class (after validation)
             val/predictions          the same validation photos every epoch; green = right, red = wrong
             val/worst_predictions    the validation photos with the highest loss (best checkpoint, at the end)
    Text     val/per_class_scores     precision, recall, F1 and number of photos for every class
    HParams  best/val_acc, ...        the settings of each run next to its best checkpoint's scores

Drawing pictures costs time, so it happens at most once per epoch, on a fixed small sample, and an
epoch is skipped when drawing has already taken more than ``DRAWING_BUDGET`` of the training time
(the last epoch is always drawn).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_precision, multiclass_recall
from torchvision.utils import make_grid

PREVIEW_IMAGES = 16  # training images in the batch preview
SAMPLE_IMAGES = 16  # validation images in the predictions grid (the same ones every epoch)
WORST_IMAGES = 16  # highest-loss validation images shown at the end
TILE = 160  # pixels per image in the grids: big enough to see, small enough to be cheap
DRAWING_BUDGET = 0.03  # at most 3% of the training time goes into drawing pictures
RIGHT, WRONG = (30, 150, 60), (210, 40, 40)  # green and red frames


# ---- the callback ---------------------------------------------------------------------------------
class Dashboard(L.Callback):
    """Logs the pictures and tables described above; also keeps each epoch's scores for report.md."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []  # one row per epoch: train/val accuracy and loss
        self._preview_done = False
        self._sample: tuple[list[int], torch.Tensor] | None = None  # val indices and their images
        self._started = 0.0
        self._drawing_seconds = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning when fit begins: start the clock the drawing budget is measured against."""
        self._started = time.perf_counter()
        self._drawing_seconds = 0.0
        self._preview_done = False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Called by Lightning before every training step; the very first batch becomes the preview."""
        if self._preview_done or not trainer.is_global_zero or _writer(trainer) is None:
            return
        self._preview_done = True
        images, labels, _ = batch
        images = denormalise(images[:PREVIEW_IMAGES], pl_module.mean, pl_module.std)
        names = pl_module.hparams.class_names
        captions = [[names[label]] for label in labels[:PREVIEW_IMAGES].tolist()]
        _writer(trainer).add_image("train/batch_preview", captioned_grid(images, captions), trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning after each validation pass (after the model gathered ``val_results``)."""
        results = pl_module.val_results
        if trainer.sanity_checking or not trainer.is_global_zero or not results or _writer(trainer) is None:
            return
        writer, step, names = _writer(trainer), trainer.global_step, pl_module.hparams.class_names
        writer.add_text("val/per_class_scores", per_class_table(results, names), step)

        last_epoch = trainer.current_epoch >= trainer.max_epochs - 1
        over_budget = self._drawing_seconds > DRAWING_BUDGET * (time.perf_counter() - self._started)
        if over_budget and not last_epoch:
            return
        started = time.perf_counter()
        matrix = confusion_matrix(results, len(names))
        title = f"Confusion matrix, validation, epoch {trainer.current_epoch + 1}"
        writer.add_image("val/confusion_matrix", figure_to_array(confusion_matrix_figure(matrix, names, title)),
                         step, dataformats="HWC")
        writer.add_image("val/predictions", self._predictions_grid(trainer, results, names), step)
        self._drawing_seconds += time.perf_counter() - started

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

    def _predictions_grid(self, trainer: L.Trainer, results: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
        """The fixed sample of validation images with their true and predicted class."""
        if self._sample is None:  # loaded once: the same photos every epoch, so progress is visible
            dataset = trainer.datamodule.datasets["val"]
            indices = spread_indices(len(dataset), SAMPLE_IMAGES)
            self._sample = indices, torch.stack([dataset[i][0] for i in indices])
        indices, images = self._sample
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


def find_dashboard(trainer: L.Trainer) -> Dashboard | None:
    """The Dashboard among the trainer's callbacks (``build_trainer`` adds one)."""
    return next((callback for callback in trainer.callbacks if isinstance(callback, Dashboard)), None)


def log_final_results(trainer: L.Trainer, model: L.LightningModule, config: dict[str, Any], metrics: dict) -> None:
    """After the best checkpoint is evaluated: its worst predictions, and the HParams entry of the run."""
    writer = _writer(trainer)
    if writer is None or not trainer.is_global_zero:
        return
    step, results, names = trainer.global_step, model.val_results, model.hparams.class_names
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
    scores = {f"best/{key}": metrics[key] for key in ("val_acc", "val_f1_macro", "val_loss", "test_acc")
              if metrics.get(key) is not None}
    hparams = {key: "none" if value is None else value for key, value in config.items()}
    trainer.logger.log_hyperparams(hparams, scores, step=step)
    trainer.logger.finalize("success")  # write everything to disk now


def _writer(trainer: L.Trainer):
    """TensorBoard's SummaryWriter, or None when the trainer logs elsewhere."""
    experiment = getattr(trainer.logger, "experiment", None)
    return experiment if hasattr(experiment, "add_image") else None


# ---- numbers --------------------------------------------------------------------------------------
def confusion_matrix(results: dict[str, torch.Tensor], num_classes: int) -> torch.Tensor:
    """Counts: row = true class, column = predicted class."""
    metric = MulticlassConfusionMatrix(num_classes)
    return metric(results["probs"], results["targets"]).long()


def per_class_scores(results: dict[str, torch.Tensor], num_classes: int) -> dict[str, list[float]]:
    """Precision, recall, F1 and support (number of validation photos) of every class."""
    probs, targets = results["probs"], results["targets"]
    return {
        "precision": multiclass_precision(probs, targets, num_classes, average=None).tolist(),
        "recall": multiclass_recall(probs, targets, num_classes, average=None).tolist(),
        "f1": multiclass_f1_score(probs, targets, num_classes, average=None).tolist(),
        "support": torch.bincount(targets, minlength=num_classes).tolist(),
    }


def per_class_table(results: dict[str, torch.Tensor], names: list[str]) -> str:
    """A markdown table, worst F1 first: the classes to look at are at the top."""
    scores = per_class_scores(results, len(names))
    lines = [
        "Precision: of the photos predicted as this class, the share that really are. "
        "Recall: of the photos of this class, the share found. F1 combines both. Worst classes first.",
        "",
        "| class | precision | recall | F1 | val photos |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for i in sorted(range(len(names)), key=lambda i: (scores["f1"][i], names[i])):
        lines.append(f"| {names[i]} | {scores['precision'][i]:.2f} | {scores['recall'][i]:.2f} | "
                     f"{scores['f1'][i]:.2f} | {scores['support'][i]} |")
    return "\n".join(lines)


def spread_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(length)``: the val set is sorted by class, so this
    picks photos of many classes, and the same ones every time."""
    if length <= count:
        return list(range(length))
    return sorted({round(i * (length - 1) / (count - 1)) for i in range(count)})


# ---- pictures -------------------------------------------------------------------------------------
def denormalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation of a float batch: back to uint8 pixels a person can look at."""
    pixels = (images.float() * std + mean).clamp(0, 1) * 255
    return pixels.round().to(torch.uint8).cpu()


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font (Pillow 10.1 and later)
    except TypeError:
        return ImageFont.load_default()


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits in ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def captioned_grid(images: torch.Tensor, captions: list[list[str]], colours: list[tuple] | None = None,
                   per_row: int = 4) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> one uint8 grid image, each tile with its caption lines underneath
    and, when ``colours`` is given, a frame in that colour."""
    font, line = _font(13), 16
    lines = max(len(c) for c in captions)
    tiles = []
    pixels = images.cpu().numpy().transpose(0, 2, 3, 1)  # numpy moves uint8 axes much faster than torch
    for i, caption in enumerate(captions):
        picture = Image.fromarray(np.ascontiguousarray(pixels[i]))
        # Small images are enlarged with visible pixels: this is exactly what the model gets.
        resample = Image.Resampling.NEAREST if picture.width < TILE else Image.Resampling.BILINEAR
        tile = Image.new("RGB", (TILE, TILE + lines * line + 4), (255, 255, 255))
        tile.paste(picture.resize((TILE, TILE), resample), (0, 0))
        draw = ImageDraw.Draw(tile)
        colour = colours[i] if colours else (0, 0, 0)
        if colours:
            draw.rectangle([0, 0, TILE - 1, TILE - 1], outline=colour, width=5)
        for j, text in enumerate(caption):
            draw.text((3, TILE + 2 + j * line), _fit(text, font, TILE - 6), fill=colour, font=font)
        tiles.append(torch.from_numpy(np.ascontiguousarray(np.asarray(tile).transpose(2, 0, 1))))
    return make_grid(torch.stack(tiles), nrow=per_row, padding=6, pad_value=255)


def confusion_matrix_figure(matrix: torch.Tensor, names: list[str], title: str) -> Figure:
    """Class names on both axes, the count in every non-empty cell, colour = share of the true class.

    Colouring by row share keeps small classes as visible as big ones; the size grows with the number
    of classes so that 37 names stay readable.
    """
    n = len(names)
    counts = matrix.numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(5.0, 2.5 + 0.3 * n)
    font = 10 if n <= 15 else 8 if n <= 30 else 7
    figure = Figure(figsize=(side + 1.2, side), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    shown = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), names, rotation=90, fontsize=font)
    axes.set_yticks(range(n), names, fontsize=font)
    axes.set_xlabel("predicted class", fontsize=font + 2)
    axes.set_ylabel("true class", fontsize=font + 2)
    axes.set_title(f"{title}\nnumber = photos, colour = share of the true class (diagonal = right)",
                   fontsize=font + 2)
    for row, col in zip(*np.nonzero(counts), strict=True):
        axes.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize=font - 1,
                  color="white" if shares[row, col] > 0.6 else "black")
    figure.colorbar(shown, ax=axes, fraction=0.04, pad=0.02).set_label("share of the true class")
    return figure


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a matplotlib figure (no window, no pyplot) to an RGB array (height, width, 3)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
