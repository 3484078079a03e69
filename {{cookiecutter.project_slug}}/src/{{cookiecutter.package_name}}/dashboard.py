"""What TensorBoard shows besides the loss curves: what the model sees, where it is wrong, and its scores.

Open it with ``tensorboard --logdir runs``. TensorBoard groups tags by the part before the "/":

    Images   train/batch_preview      one augmented training batch, as the model sees it (at the start)
             train/lr_finder          the learning-rate finder's curve (only with --lr auto)
             val/confusion_matrix     rows: true class, columns: predicted class (after validation)
             val/predictions          the same validation photos every epoch; green = right, red = wrong
             val/worst_predictions    the validation photos with the highest loss (best checkpoint, at the end)
    Text     val/per_class_scores     precision, recall, F1 and number of photos for every class
    HParams  best/val_acc, ...        the settings of each run next to its best checkpoint's scores

Drawing pictures costs time, so it happens at most once per epoch, on a fixed small sample, in a
background thread at the lowest CPU priority while training goes on; an epoch is skipped when the
previous drawing is still running or drawing has already used more than ``DRAWING_BUDGET`` of the
training time (the last epoch is always drawn).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import lightning as L
import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_precision, multiclass_recall
from torchvision.utils import make_grid

PREVIEW_IMAGES = 16  # training images in the batch preview
SAMPLE_IMAGES = 16  # validation images in the predictions grid (the same ones every epoch)
WORST_IMAGES = 16  # highest-loss validation images shown at the end
TILE = 160  # pixels per image in the grids: big enough to see, small enough to be cheap
MIN_CELL = 24  # smallest confusion-matrix cell in pixels: room for a count and a readable name
DRAWING_BUDGET = 0.03  # at most 3% of the training time goes into drawing pictures
RIGHT, WRONG = (30, 150, 60), (210, 40, 40)  # green and red frames


# ---- the callback ---------------------------------------------------------------------------------
class Dashboard(L.Callback):
    """Logs the pictures and tables described above; also keeps each epoch's scores for report.md."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []  # one row per epoch: train/val accuracy and loss
        self._sample: tuple[list[int], torch.Tensor] | None = None  # val indices and their images
        self._painter: ThreadPoolExecutor | None = None  # one background thread that draws
        self._drawing: Future | None = None
        self._preview_done = False
        self._started = 0.0
        self._drawing_seconds = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning when fit begins: start the drawing thread and the budget's clock."""
        self._painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard", initializer=_lowest_priority)
        self._started, self._drawing_seconds, self._preview_done = time.perf_counter(), 0.0, False

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning when fit is done: wait for the last drawing (and raise its errors, if any)."""
        self._stop_painter(wait=True)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Called by Lightning when training fails or is interrupted: drop pending drawings."""
        self._stop_painter(wait=False)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Called by Lightning before every training step; the very first batch becomes the preview."""
        if self._preview_done:  # the usual case, checked first: this hook runs at every step
            return
        writer = _writer(trainer)
        if not trainer.is_global_zero or writer is None:
            return
        self._preview_done = True
        images, labels, _ = batch
        images = denormalise(images[:PREVIEW_IMAGES], pl_module.mean, pl_module.std)
        names = pl_module.hparams.class_names
        captions = [[names[label]] for label in labels[:PREVIEW_IMAGES].tolist()]
        step = trainer.global_step

        def draw() -> None:
            writer.add_image("train/batch_preview", captioned_grid(images, captions), step)

        self._draw_in_background(draw)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called by Lightning after each validation pass (after the model gathered ``val_results``)."""
        results, writer = pl_module.val_results, _writer(trainer)
        if trainer.sanity_checking or not trainer.is_global_zero or not results or writer is None:
            return
        step, epoch, names = trainer.global_step, trainer.current_epoch + 1, pl_module.hparams.class_names
        writer.add_text("val/per_class_scores", per_class_table(results, names), step)

        last_epoch = epoch >= trainer.max_epochs
        busy = self._drawing is not None and not self._drawing.done()
        over_budget = self._drawing_seconds > DRAWING_BUDGET * (time.perf_counter() - self._started)
        if last_epoch and busy:
            self._drawing.result()  # the last epoch is always drawn
        elif busy or (over_budget and not last_epoch):
            return
        sample = self._validation_sample(trainer)

        def draw() -> None:
            matrix = confusion_matrix(results, len(names))
            picture = confusion_matrix_image(matrix, names, f"Confusion matrix, validation, epoch {epoch}")
            writer.add_image("val/confusion_matrix", np.asarray(picture), step, dataformats="HWC")
            writer.add_image("val/predictions", predictions_grid(sample, results, names), step)

        self._draw_in_background(draw)

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

    def _draw_in_background(self, job) -> None:
        """Run ``job`` on the drawing thread and add its time to the budget."""
        def timed() -> None:
            started = time.thread_time()  # CPU time: at low priority the drawing may wait, which costs nothing
            job()
            self._drawing_seconds += time.thread_time() - started

        self._drawing = self._painter.submit(timed) if self._painter else None
        if self._drawing is None:  # not inside fit (no thread): draw right here
            timed()

    def _stop_painter(self, wait: bool) -> None:
        if self._painter is not None:
            self._painter.shutdown(wait=wait, cancel_futures=not wait)
            self._painter = None
        if wait and self._drawing is not None:
            self._drawing.result()
        self._drawing = None


def _lowest_priority() -> None:
    """Runs first in the drawing thread: on Linux, give it the lowest CPU priority (nice 19), so when
    training keeps every core busy (a CPU-only machine) it draws in idle moments instead of slowing
    training down. Elsewhere the thread keeps its normal priority."""
    with contextlib.suppress(AttributeError, OSError):  # per-thread priorities are Linux-only
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


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


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font (no font files needed on any system)."""
    return ImageFont.load_default(size=size)


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


def confusion_matrix_image(matrix: torch.Tensor, names: list[str], title: str) -> Image.Image:
    """Class names on both axes, the count in every non-empty cell, colour = share of the true class.

    Colouring by row share keeps small classes as visible as big ones. Cells shrink as classes are added
    but never below ``MIN_CELL`` pixels, so 37 names stay readable. Drawn with Pillow (a few hundredths
    of a second) rather than matplotlib (about a second for 37 classes), because it happens every epoch.
    """
    n = len(names)
    counts = matrix.numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    colours = (colormaps["Blues"](shares)[..., :3] * 255).astype(np.uint8)  # matplotlib's blue scale
    cell = max(MIN_CELL, min(48, 900 // n))
    font, bold = _font(max(10, min(14, cell // 2 + 2))), _font(15)
    label = int(max(font.getlength(name) for name in names)) + 8
    left, top, grid = label + 30, 60, n * cell
    subtitle = "number = photos, colour = share of the true class (diagonal = right)"
    width = max(left + grid + 110, int(max(bold.getlength(title), font.getlength(subtitle))) + 20)
    image = Image.new("RGB", (width, top + grid + label + 40), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 8), title, fill=(0, 0, 0), font=bold, anchor="ma")
    draw.text((width // 2, 30), subtitle, fill=(80, 80, 80), font=font, anchor="ma")
    for row in range(n):
        y = top + row * cell
        draw.text((left - 6, y + cell // 2), names[row], fill=(0, 0, 0), font=font, anchor="rm")
        for col in range(n):
            x = left + col * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=tuple(colours[row, col].tolist()))
            if counts[row, col]:
                ink = (255, 255, 255) if shares[row, col] > 0.6 else (0, 0, 0)
                draw.text((x + cell // 2, y + cell // 2), str(counts[row, col]), fill=ink, font=font, anchor="mm")
    draw.rectangle([left - 1, top - 1, left + grid, top + grid], outline=(120, 120, 120))
    for col, name in enumerate(names):  # column names written upwards, like a spine of a book
        text = Image.new("RGB", (label, cell), (255, 255, 255))
        ImageDraw.Draw(text).text((label - 4, cell // 2), name, fill=(0, 0, 0), font=font, anchor="rm")
        image.paste(text.rotate(90, expand=True), (left + col * cell, top + grid + 4))
    draw.text((left + grid // 2, top + grid + label + 10), "predicted class", fill=(0, 0, 0), font=bold, anchor="ma")
    axis = Image.new("RGB", (grid, 22), (255, 255, 255))
    ImageDraw.Draw(axis).text((grid // 2, 2), "true class", fill=(0, 0, 0), font=bold, anchor="ma")
    image.paste(axis.rotate(90, expand=True), (4, top))
    # Colour bar: the scale of shares, 1 at the top.
    bar = (colormaps["Blues"](np.linspace(1, 0, grid))[:, :3] * 255).astype(np.uint8)
    image.paste(Image.fromarray(np.repeat(bar[:, None], 16, axis=1)), (left + grid + 20, top))
    for share in (0, 0.5, 1):
        draw.text((left + grid + 40, top + round((1 - share) * (grid - 1))), f"{share:g}", fill=(0, 0, 0), font=font,
                  anchor="lm")
    return image
