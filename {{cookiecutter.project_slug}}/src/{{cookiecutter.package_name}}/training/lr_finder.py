"""``--lr auto``: let Lightning's learning-rate finder pick the learning rate before training.

The finder trains for a few dozen batches while raising the learning rate from tiny to huge, records
the loss, and suggests the rate where the loss falls fastest. The weights are put back afterwards, so
the real training starts from the same point. The chosen rate is written to the run's config.yaml
(``lr:``), its curve to TensorBoard (``train/lr_finder``) and to lr_finder.png for report.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.tuner import Tuner
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.training.writing import picture_bytes, write_atomically

FALLBACK_LR = 1e-3  # used when the finder cannot suggest anything (too few batches, diverging loss)
MIN_LR, MAX_LR = 1e-6, 1.0  # the range tried
SENSIBLE_LR = (1e-5, 1e-1)  # a suggestion outside this range for fine-tuning with AdamW is a bad curve
MIN_STEPS, MAX_STEPS = 50, 100  # batches tried: enough points for a curve, few enough to be quick


@dataclass
class LrChoice:
    """The learning rate ``--lr auto`` settled on, and how."""

    lr: float
    how: str  # in words, for the console and report.md
    plot: Path | None = None  # lr_finder.png, when the finder ran


def choose_lr(model: L.LightningModule, datamodule: L.LightningDataModule, trainer: L.Trainer,
              resume_from: Path | None, say: Callable[[str], object] = print) -> LrChoice:
    """For ``lr: auto``: the rate a resumed run started with, or else what a short search finds. Says it.

    ``trainer`` is the run's: the search uses its device and precision, and draws into its run folder
    and TensorBoard. The caller gives the rate to the model and writes it into config.yaml.
    """
    if trainer.num_devices * trainer.num_nodes > 1:
        # Each process would search on its own and could pick another rate: the copies would drift apart.
        raise UserError("--lr auto works on one device: run it once with --devices 1, then train on several "
                        "devices with the lr it wrote into that run's config.yaml.")
    if resume_from is not None:
        # A resumed run keeps the rate it started with, which its checkpoint remembers.
        saved = torch.load(resume_from, map_location="cpu", weights_only=True)["hyper_parameters"]["settings"]["lr"]
        choice = LrChoice(float(saved), "kept from the run being resumed")
    else:
        choice = run_finder(model, datamodule, trainer, say)
    say(f"Learning rate: {choice.lr:.2e} ({choice.how})")
    return choice


def run_finder(model: L.LightningModule, datamodule: L.LightningDataModule, trainer: L.Trainer,
               say: Callable[[str], object] = print) -> LrChoice:
    """Run Lightning's finder on a throw-away Trainer (one device, no logging, no checkpoints).

    The search is one epoch of ``steps`` batches, so it trains exactly what the run's first epoch trains
    (only the head when the backbone starts frozen), whatever the size of the dataset.
    """
    datamodule.setup("fit")  # decodes small datasets once, as fit would
    steps = min(MAX_STEPS, max(MIN_STEPS, len(datamodule.train_dataloader())))
    say(f"LR finder: trying learning rates from {MIN_LR:g} to {MAX_LR:g} on {steps} batches ...")
    run_path = Path(trainer.default_root_dir)
    search = L.Trainer(
        accelerator=trainer.accelerator, devices=1, precision=trainer.precision,
        max_steps=steps, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=False, num_sanity_val_steps=0,
        check_val_every_n_epoch=10**6,  # the search only needs training losses, never validation
        default_root_dir=run_path,  # where the finder keeps its temporary copy of the weights
    )
    model.lr = FALLBACK_LR  # "auto" is not a number the optimiser can start from; the search replaces it
    finder = Tuner(search).lr_find(model, train_dataloaders=datamodule.train_dataloader(num_batches=steps),
                                   val_dataloaders=datamodule.val_dataloader(), min_lr=MIN_LR, max_lr=MAX_LR,
                                   num_training=steps, update_attr=False)
    suggestion = finder.suggestion() if finder else None
    if suggestion is None or not suggestion > 0:
        return LrChoice(FALLBACK_LR, "the LR finder had too few batches to suggest one; using the default")
    # Lightning suggests the steepest fall of the loss, which a noisy curve can put far too high;
    # a tenth of the rate with the lowest loss (fastai's rule) caps it. The first points are skipped,
    # as Lightning does: the smoothed loss is not settled there yet.
    lrs, losses = finder.results["lr"][10:], finder.results["loss"][10:]
    losses = torch.tensor(losses, dtype=torch.float64).nan_to_num(nan=float("inf"))
    suggestion = min(suggestion, lrs[int(losses.argmin())] / 10)
    how = "chosen by the LR finder"
    if not SENSIBLE_LR[0] <= suggestion <= SENSIBLE_LR[1]:
        # A curve without a clear downhill part (e.g. a model that cannot learn yet) gives nonsense.
        suggestion, how = FALLBACK_LR, "the LR finder's curve had no clear downhill part; using the default"
    plot = run_path / "lr_finder.png"
    figure = finder_figure(finder.results["lr"], finder.results["loss"], suggestion)
    write_atomically(plot, picture_bytes(figure))
    writer = getattr(trainer.logger, "experiment", None)  # TensorBoard's SummaryWriter, when the run logs there
    if hasattr(writer, "add_image"):
        writer.add_image("train/lr_finder", figure_to_array(figure), 0, dataformats="HWC")
    return LrChoice(float(suggestion), how, plot)


def finder_figure(lrs: list[float], losses: list[float], chosen: float) -> Figure:
    """Loss against learning rate (log scale), with the chosen rate marked."""
    figure = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.plot(lrs, losses, color="tab:blue")
    axes.axvline(chosen, color="tab:red", linestyle="--", label=f"chosen: {chosen:.2e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (log scale)")
    axes.set_ylabel("training loss (smoothed)")
    axes.set_title("LR finder: the chosen rate is where the loss falls fastest")
    axes.legend()
    return figure


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a matplotlib figure (no window, no pyplot) to an RGB array (height, width, 3)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
