"""Fine-tune a pretrained backbone on your photos. Reads top to bottom like a recipe:

    config -> run folder -> seed -> device -> data -> model -> trainer -> fit -> evaluate -> report -> summary

Run it from the command line:

    {{ cookiecutter.project_slug }} train --data data/my-pets
    {{ cookiecutter.project_slug }} train --config configs/default.yaml --epochs 5 --batch-size 16
    {{ cookiecutter.project_slug }} train --resume runs/<name>          # continue after a crash
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from rich.console import Console
from rich.table import Table

from {{ cookiecutter.package_name }}.callbacks import ImagesPerSecond, SafeCheckpointIO
from {{ cookiecutter.package_name }}.config import Config, save_config
from {{ cookiecutter.package_name }}.dashboard import Dashboard, find_dashboard, log_final_results, per_class_scores
from {{ cookiecutter.package_name }}.data import (
    DatasetSplits,
    ImageFolderDataModule,
    class_weights,
    find_dataset,
    imbalance_ratio,
    write_skipped_csv,
    write_splits_csv,
)
from {{ cookiecutter.package_name }}.device import RUN_FOLDER_VARIABLE, DevicePlan, choose_device, is_main_process
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.folders import IMBALANCE_LIMIT, TOO_LARGE
from {{ cookiecutter.package_name }}.lr_finder import choose_lr
from {{ cookiecutter.package_name }}.model import (
    Classifier,
    check_backbone_name,
    create_backbone,
    model_data_config,
    weights_source,
)
from {{ cookiecutter.package_name }}.report import write_report
from {{ cookiecutter.package_name }}.run_folder import RunFolder, discard_if_unused, find_resume, new_run, write_json

console = Console(soft_wrap=True)  # long lines stay whole in logs instead of wrapping at 80 columns

# Lightning's start-up chatter ("GPU available: False ...") is replaced by our own one-line summaries,
# and its hints about worker counts are handled by choose_device.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*overridden `on_after_batch_transfer`.*")  # intended: see Classifier
warnings.filterwarnings("ignore", ".*callbacks used to create the checkpoint need to be provided.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")  # a Lightning/PyTorch version mismatch, harmless


def train(cfg: Config) -> RunFolder:
    """Run one training from a resolved config; returns the run folder it filled."""
    started = time.perf_counter()
    check_backbone_name(cfg.backbone)  # a typo in the model name fails now, not after the data is decoded

    # 1. Run folder: a new one, or the one we are resuming (same folder, same TensorBoard run).
    #    With several GPUs or machines, only the main process creates and writes it (see device.py).
    main = is_main_process()
    console.quiet = not main
    if cfg.resume:
        run, resume_from = find_resume(cfg.resume)
    elif main:
        run, resume_from = new_run(cfg), None
        os.environ[RUN_FOLDER_VARIABLE] = str(run.path)  # Lightning's launcher passes it to the helpers
    else:
        run, resume_from = RunFolder(Path(os.environ.get(RUN_FOLDER_VARIABLE) or Path(cfg.output) / "helper")), None
    # A new run that fails before its first checkpoint (a data or weights problem) leaves no empty folder.
    with discard_if_unused(run, fresh=main and resume_from is None):
        console.print(f"Run folder: [bold]{run}[/]")
        if main:
            save_config(cfg, run.config)

        # 2. Seed: the same seed gives the same split, the same augmentations and the same head init.
        L.seed_everything(cfg.seed, verbose=False)

        # 3. Device: where to train and in which precision, decided once and printed.
        plan = choose_device(cfg.accelerator, cfg.precision, cfg.num_workers, compile=cfg.compile)
        torch.set_num_threads(plan.threads)  # so data loading and compute do not fight over the cores
        console.print(plan.description)

        # 4. Data: find the images, decode each once (unreadable ones are left out and listed in
        #    skipped.csv, so a bad file cannot stop training mid-epoch), split them, remember the classes.
        splits = find_dataset(cfg.data, cfg.val_fraction, cfg.seed, check_images=True)
        check_same_classes(run, splits.classes, resuming=resume_from is not None)
        if main:
            write_json(run.labels, splits.classes)
            write_splits_csv(splits, run.splits)
            write_skipped_csv(splits, run.skipped)
        describe_data(splits, run)
        loss_weights, balanced_sampling, balance = choose_balance(cfg.balance, splits)

        # 5. Model: the backbone with a new head for our classes. When resuming, the weights come from
        #    the checkpoint, so nothing is downloaded.
        network, _ = create_backbone(
            cfg.backbone, len(splits.classes),
            pretrained=cfg.pretrained and resume_from is None,
            weights=cfg.weights if resume_from is None else None, image_size=cfg.image_size,
        )
        source = weights_source(cfg.backbone, cfg.pretrained, cfg.weights)  # the run's, resumed or not
        console.print(f"Model: {cfg.backbone} with {len(splits.classes)} classes; weights: {source}")
        data_config = model_data_config(network, cfg.image_size)
        model = Classifier(
            network, cfg.backbone, splits.classes, data_config,
            lr=cfg.lr, backbone_lr_factor=cfg.backbone_lr_factor, weight_decay=cfg.weight_decay,
            warmup_fraction=cfg.warmup_fraction, label_smoothing=cfg.label_smoothing,
            freeze_epochs=cfg.freeze_epochs, pretrained_source=source, class_weights=loss_weights,
        )
        if plan.channels_last:
            model = model.to(memory_format=torch.channels_last)
            model.channels_last = True
        if plan.compile:
            # Compiled on first use; the weights (and so the checkpoints) are those of the plain network.
            network.forward_features = torch.compile(network.forward_features)
        datamodule = ImageFolderDataModule(splits, data_config, cfg.batch_size, plan.num_workers, plan.pin_memory,
                                           balanced_sampling=balanced_sampling)

        # 6. Trainer: Lightning runs the loop; callbacks save checkpoints and measure the run.
        throughput = ImagesPerSecond()
        trainer = build_trainer(cfg, plan, run, throughput, steps_per_epoch=len(splits.train) // cfg.batch_size)
        # With --lr auto, a short learning-rate search picks the rate (and config.yaml records it).
        lr_choice = choose_lr(cfg, plan, run, model, datamodule, trainer, resume_from)

        # 7. Fit. A crash loses at most the current epoch: last.ckpt is written after every epoch.
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        if trainer.interrupted:
            raise UserError(f"training stopped early; continue it with: train --resume {run}")
        if trainer.world_size > 1:
            # Several processes trained together. From here on the main process works alone: it
            # evaluates the best checkpoint on the whole val set and writes metrics.json and the report.
            trainer.strategy.barrier()
            torch.distributed.destroy_process_group()
            if not trainer.is_global_zero:
                return run

        # 8. Evaluate the best checkpoint once more and write metrics.json.
        metrics = evaluate(cfg, plan, run, model, datamodule, splits, trainer, throughput, source)
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        metrics["balance"] = balance
        write_json(run.metrics, metrics)

        # 9. Report: the final pictures and scores in TensorBoard, and report.md in the run folder.
        log_final_results(trainer, model, cfg.to_dict(), metrics)
        history = find_dashboard(trainer).history
        report = write_report(run, cfg, metrics, model.val_results, splits, history, lr_choice)
        console.print(f"Report: [bold]{report}[/]")

        # 10. Summary.
        print_summary(metrics, run)
        return run


def check_same_classes(run: RunFolder, classes: list[str], resuming: bool) -> None:
    """A resumed run must see the same classes, or its head would mean something else."""
    if resuming and run.labels.is_file():
        saved = json.loads(run.labels.read_text(encoding="utf-8"))
        if saved != classes:
            raise UserError(
                f"the data now has classes {classes} but {run} was trained on {saved}; "
                "start a new run instead of --resume."
            )


def describe_data(splits: DatasetSplits, run: RunFolder | None = None) -> None:
    """One line about the data: classes, images per split, and anything skipped."""
    made = " (val split made from train)" if splits.val_was_made else ""
    line = (
        f"Data: {len(splits.classes)} classes; {len(splits.train)} train, {len(splits.val)} val"
        f"{made}, {len(splits.test)} test images"
    )
    skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(splits.skipped.items()))
    if skipped:
        line += f"; skipped {skipped}" + (f" (listed in {run.skipped})" if run else "")
    console.print(line)
    if splits.skipped.get("unreadable"):
        console.print(f"[yellow]Warning:[/] {splits.skipped['unreadable']} image file(s) cannot be decoded and are "
                      "left out; check-data DATA_DIR lists them with the reason.")
    if splits.skipped.get(TOO_LARGE):
        console.print(f"[yellow]Warning:[/] {splits.skipped[TOO_LARGE]} image(s) are too large for Pillow to decode "
                      "safely and are left out; to include them, downscale them (check-data DATA_DIR lists them).")
    if splits.empty_classes:
        console.print(f"[yellow]Warning:[/] empty class folder(s) skipped: {', '.join(splits.empty_classes)}")


def choose_balance(balance: str, splits: DatasetSplits) -> tuple[list[float] | None, bool, str]:
    """Resolve --balance into (loss weights or None, balanced sampling?, what was chosen), and say it.

    ``auto`` weights the loss when the biggest class has more than 3x the images of the smallest:
    otherwise the model learns that guessing the big class is usually right.
    """
    counts = splits.train_counts()
    ratio = imbalance_ratio(counts)
    biggest = splits.classes[counts.index(max(counts))]
    smallest = splits.classes[counts.index(min(counts))]
    uneven = f"{biggest} has {ratio:.1f}x the training images of {smallest}"
    if balance == "auto":
        balance = "weighted-loss" if ratio > IMBALANCE_LIMIT else "none"
        if balance == "weighted-loss":
            console.print(f"Balance: classes are uneven ({uneven}), so the training loss weights each class by "
                          "1/its size (--balance auto; --balance none turns it off).")
    elif balance == "weighted-loss":
        console.print(f"Balance: the training loss weights each class by 1/its size ({uneven}).")
    elif balance == "sampler":
        console.print(f"Balance: training batches draw every class equally often ({uneven}).")
    elif ratio > IMBALANCE_LIMIT:
        console.print(f"Balance: none, although classes are uneven ({uneven}).")
    weights = class_weights(counts) if balance == "weighted-loss" else None
    return weights, balance == "sampler", balance


def lightning_strategy(cfg: Config) -> str:
    """Several processes (DDP) must be told that the frozen backbone gets no gradients at first."""
    several = cfg.devices not in ("auto", 1) or cfg.num_nodes > 1
    if several and cfg.freeze_epochs > 0 and cfg.strategy in ("auto", "ddp"):
        return "ddp_find_unused_parameters_true"
    return cfg.strategy


def build_trainer(cfg: Config, plan: DevicePlan, run: RunFolder, throughput: ImagesPerSecond,
                  steps_per_epoch: int) -> L.Trainer:
    """Lightning's Trainer with our checkpoints, TensorBoard logger and progress bar."""
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor="val/f1_macro",
        mode="max",
        enable_version_counter=False,  # overwrite best.ckpt instead of writing best-v1.ckpt
    )
    # checkpoints/last.ckpt after every epoch, what --resume uses. A checkpoint of its own: Lightning's
    # save_last=True only rewrites last.ckpt in epochs that also improved best.ckpt. In those epochs
    # SafeCheckpointIO makes last.ckpt a hard link to best.ckpt, so each epoch is written once.
    latest = ModelCheckpoint(dirpath=run.checkpoints, filename="last", enable_version_counter=False)
    return L.Trainer(
        accelerator=plan.lightning_accelerator,
        devices=1 if cfg.devices == "auto" else cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=lightning_strategy(cfg),
        precision=plan.precision,
        max_epochs=cfg.epochs,
        # Events go straight into the run folder, so `tensorboard --logdir runs` shows every run.
        logger=TensorBoardLogger(save_dir=run.path, name="", version="", default_hp_metric=False),
        callbacks=[best, latest, LearningRateMonitor(logging_interval="step"), throughput, Dashboard(),
                   # Redrawing the bar costs milliseconds: about 20 redraws an epoch are plenty.
                   RichProgressBar(refresh_rate=max(1, steps_per_epoch // 20))],
        # Checkpoints are written in a background thread while the next epoch trains, and atomically.
        plugins=[AsyncCheckpointIO(SafeCheckpointIO())],
        default_root_dir=run.path,  # anything Lightning writes outside the logger stays in the run folder
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        num_sanity_val_steps=0,  # our validation code is tested; start training at once
        enable_model_summary=False,
    )


def evaluate(cfg: Config, plan: DevicePlan, run: RunFolder, model: Classifier, datamodule: ImageFolderDataModule,
             splits: DatasetSplits, trainer: L.Trainer, throughput: ImagesPerSecond, source: str) -> dict:
    """Validate (and test, if there is a test split) the best checkpoint; return metrics.json's content."""
    best = run.best if run.best.is_file() else run.last
    evaluator = L.Trainer(
        accelerator=plan.lightning_accelerator, devices=1, precision=plan.precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    # When the last epoch was the best, best.ckpt and last.ckpt are one file (see SafeCheckpointIO): the
    # model already holds those weights and the scores of their validation, so nothing is loaded or redone.
    if best == run.best and run.last.is_file() and os.path.samefile(run.best, run.last):
        checkpoint = None
        val = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    else:
        checkpoint = best
        val = evaluator.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)[0]
    per_class = per_class_scores(model.val_results, len(splits.classes))
    metrics = {
        "val_acc": round(val["val/acc"], 4),
        "val_f1_macro": round(val["val/f1_macro"], 4),
        "val_loss": round(val["val/loss"], 4),
        "per_class": {
            name: {key: round(values[i], 4) for key, values in per_class.items()}
            for i, name in enumerate(splits.classes)
        },
    }
    if splits.test:
        test = evaluator.test(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True, verbose=False)[0]
        metrics.update(test_acc=round(test["test/acc"], 4), test_f1_macro=round(test["test/f1_macro"], 4))
        trainer.logger.log_metrics({"test/acc": test["test/acc"], "test/f1_macro": test["test/f1_macro"]},
                                   step=trainer.global_step)
    metrics.update(
        epochs=trainer.current_epoch,
        best_checkpoint=str(best),
        train_images_per_s=round(throughput.history[-1], 1) if throughput.history else None,
        device=plan.accelerator if plan.accelerator != "cuda" else f"cuda ({torch.cuda.get_device_name(0)})",
        precision=plan.precision,
        backbone=cfg.backbone,
        pretrained=source,
        image_size=cfg.image_size,
        images={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        skipped=dict(splits.skipped),
    )
    return metrics


def print_summary(metrics: dict, run: RunFolder) -> None:
    """The final table, then where everything is."""
    table = Table(title="Result (best checkpoint)", show_header=False)
    table.add_row("val accuracy", f"{metrics['val_acc']:.1%}")
    table.add_row("val macro F1", f"{metrics['val_f1_macro']:.3f}")
    table.add_row("val loss", f"{metrics['val_loss']:.3f}")
    if "test_acc" in metrics:
        table.add_row("test accuracy", f"{metrics['test_acc']:.1%}")
    table.add_row("epochs", str(metrics["epochs"]))
    table.add_row("starting weights", metrics["pretrained"])
    table.add_row("time", f"{metrics['seconds']:.0f} s")
    if metrics["train_images_per_s"]:
        table.add_row("training speed", f"{metrics['train_images_per_s']:.0f} images/s")
    console.print(table)
    console.print(f"Run folder: [bold]{run}[/]  (TensorBoard: tensorboard --logdir {run.path.parent})")
