"""Fine-tune a pretrained backbone on your photos. Reads top to bottom like a recipe:

    config -> run folder -> seed -> device -> data -> model -> trainer -> fit -> evaluate -> report -> summary

Run it from the command line:

    {{ cookiecutter.project_slug }} train --data data/my-pets
    {{ cookiecutter.project_slug }} train --config configs/default.yaml --epochs 5 --batch-size 16
    {{ cookiecutter.project_slug }} train --resume runs/<name>          # continue after a crash
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from rich.console import Console
from rich.markup import escape

from {{ cookiecutter.package_name }}.config import AUTO, Config, save_config
from {{ cookiecutter.package_name }}.data import ImageFolderDataModule
from {{ cookiecutter.package_name }}.dataset.balance import choose_balance
from {{ cookiecutter.package_name }}.dataset.folders import find_dataset, skipped_rows, split_rows
from {{ cookiecutter.package_name }}.device import DevicePlan, choose_device
from {{ cookiecutter.package_name }}.errors import UserError, shell_quote
from {{ cookiecutter.package_name }}.model import Classifier
from {{ cookiecutter.package_name }}.model.network import check_backbone_name
from {{ cookiecutter.package_name }}.reporting import evaluation, summary
from {{ cookiecutter.package_name }}.reporting.dashboard import CurvesFirstLogger, Dashboard, log_final_results
from {{ cookiecutter.package_name }}.reporting.report import review_hint, write_report
from {{ cookiecutter.package_name }}.reporting.validation import ValidationResults
from {{ cookiecutter.package_name }}.review import changes
from {{ cookiecutter.package_name }}.run_folder import finding
from {{ cookiecutter.package_name }}.run_folder.checkpoints import SafeCheckpointIO, best_and_last
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder, discard_if_unused, write_json
from {{ cookiecutter.package_name }}.training import lr_finder, processes
from {{ cookiecutter.package_name }}.training.quiet import quiet_lightning
from {{ cookiecutter.package_name }}.training.speed import ImagesPerSecond
from {{ cookiecutter.package_name }}.training.writing import write_csv


def train(cfg: Config, resume: tuple[RunFolder, Path] | None = None, callbacks: Sequence[L.Callback] = ()) -> RunFolder:
    """Run one training from a resolved config; returns the run folder it filled.

    ``resume``: the run and checkpoint ``find_resume(cfg.resume)`` found, when the caller has them already.
    ``callbacks``: more Lightning callbacks for the trainer (the template's benchmarks add one).
    """
    started = time.perf_counter()
    check_backbone_name(cfg.backbone)  # a typo in the model name fails now, not after the data is decoded

    # 1. Run folder: a new one, or the one we are resuming (same folder, same TensorBoard run).
    #    With several GPUs or machines, only the main process creates and writes it (training/processes.py).
    main = processes.is_main_process()
    console = Console(soft_wrap=True, quiet=not main)  # long lines stay whole in logs instead of wrapping
    run, resume_from = resume or finding.open_run(cfg.output, cfg.name, cfg.resume, main)
    # A new run that fails before its first checkpoint (a data or weights problem) leaves no empty folder.
    with (discard_if_unused(run, fresh=main and resume_from is None),
          processes.run_folder_for_helpers(run.path), quiet_lightning()):
        console.print(f"Run folder: [bold]{escape(str(run))}[/]")
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
        if resume_from is not None:
            finding.check_same_classes(run, splits.classes)
        if main:
            write_json(run.labels, splits.classes)
            write_csv(run.splits, split_rows(splits))
            write_csv(run.skipped, skipped_rows(splits))
        for line in summary.data_lines(splits, run.skipped):
            console.print(line)
        if main and (reviewed := changes.since_last_run(cfg.data, run.path)):  # what `review` changed since
            console.print(reviewed)
        loss_weights, balanced_sampling, balance = choose_balance(cfg.balance, splits, say=console.print)

        # 5. Model: the backbone with a new head for our classes, then its starting weights. When resuming,
        #    the weights come from the checkpoint, so nothing is downloaded.
        model = Classifier(cfg.to_dict(), splits.classes, class_weights=loss_weights, channels_last=plan.channels_last)
        source = model.load_starting_weights() if resume_from is None else model.hparams.pretrained_source
        console.print(f"Model: {cfg.backbone} with {len(splits.classes)} classes; weights: {escape(source)}")
        if plan.compile:
            # Compiled on first use; the weights (and so the checkpoints) are those of the plain network.
            model.model.forward_features = torch.compile(model.model.forward_features)
        datamodule = ImageFolderDataModule(splits, model.hparams.data_config, cfg.batch_size, plan.num_workers,
                                           plan.pin_memory, balanced_sampling=balanced_sampling)

        # 6. Trainer: Lightning runs the loop; callbacks save checkpoints, measure the run and draw it.
        throughput, predictions = ImagesPerSecond(), ValidationResults()
        pictures = Dashboard(predictions)
        trainer = build_trainer(cfg, plan, run, [throughput, predictions, pictures, *callbacks],
                                steps_per_epoch=len(splits.train) // cfg.batch_size)
        lr_choice = None
        if cfg.lr == AUTO:  # a short learning-rate search picks the rate; config.yaml records it
            lr_choice = lr_finder.choose_lr(model, datamodule, trainer, resume_from, say=console.print)
            model.lr = cfg.lr = lr_choice.lr
            save_config(cfg, run.config)

        # 7. Fit. A crash loses at most the current epoch: last.ckpt is written after every epoch.
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        if trainer.interrupted:
            raise UserError(f"training stopped early; continue it with: train --resume {shell_quote(run.path)}")
        if not processes.main_goes_on_alone(trainer):  # several processes trained; the helpers are done
            return run

        # 8. Evaluate the best checkpoint once more and write metrics.json.
        metrics = evaluation.evaluate(trainer, model, datamodule, run, predictions, throughput,
                                      plan.lightning_accelerator, plan.precision)
        metrics.update(backbone=cfg.backbone, pretrained=source, image_size=cfg.image_size, balance=balance,
                       seconds=round(time.perf_counter() - started, 1))
        write_json(run.metrics, metrics)

        # 9. Report: the final pictures and scores in TensorBoard, and report.md in the run folder.
        log_final_results(trainer, predictions.results, splits.classes, cfg.to_dict(), metrics)
        report = write_report(run, cfg.to_dict(), metrics, predictions.results, splits, pictures.history, lr_choice)
        console.print(f"Report: [bold]{escape(str(report))}[/]")

        # 10. Summary.
        console.print(summary.result_table(metrics))
        if label_hint := review_hint(predictions.results, run):  # confident mistakes: labels worth a look
            console.print(f"Labels to check: {label_hint}", markup=False)
        console.print(f"Run folder: [bold]{escape(str(run))}[/]  "
                      f"(TensorBoard: tensorboard --logdir {escape(shell_quote(run.path.parent))})")
        return run


def build_trainer(cfg: Config, plan: DevicePlan, run: RunFolder, callbacks: list[L.Callback],
                  steps_per_epoch: int) -> L.Trainer:
    """Lightning's Trainer with our checkpoints, TensorBoard logger, progress bar and ``callbacks``."""
    return L.Trainer(
        accelerator=plan.lightning_accelerator, devices=1 if cfg.devices == AUTO else cfg.devices,
        num_nodes=cfg.num_nodes, precision=plan.precision, max_epochs=cfg.epochs,
        # Several processes (DDP) are told that the frozen backbone gets no gradients at first.
        strategy=processes.lightning_strategy(cfg.strategy, cfg.devices, cfg.num_nodes, cfg.freeze_epochs),
        # Events go straight into the run folder, so `tensorboard --logdir runs` shows every run.
        logger=CurvesFirstLogger(save_dir=run.path, name="", version="", default_hp_metric=False),
        # best.ckpt (best validation macro F1) and last.ckpt (every epoch, what --resume uses).
        callbacks=[*best_and_last(run.checkpoints), LearningRateMonitor(logging_interval="step"),
                   *callbacks,
                   # Redrawing the bar costs milliseconds: about 20 redraws an epoch are plenty.
                   RichProgressBar(refresh_rate=max(1, steps_per_epoch // 20))],
        # Checkpoints are written in a background thread while the next epoch trains, and atomically.
        plugins=[AsyncCheckpointIO(SafeCheckpointIO())],
        default_root_dir=run.path,  # anything Lightning writes outside the logger stays in the run folder
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        num_sanity_val_steps=0,  # our validation code is tested; start training at once
        enable_model_summary=False,
    )
