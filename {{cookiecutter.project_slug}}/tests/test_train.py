"""Training end to end through the command line: the run folder, TensorBoard, resume, the split."""

from __future__ import annotations

import csv
import errno
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import timm
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
from {{ cookiecutter.package_name }}.model import Classifier
from {{ cookiecutter.package_name }}.training.backbones import model_data_config

from .conftest import CLASSES, FAST, TINY_MODEL, make_image_folder, run_cli

RUN_FILES = {"config.yaml", "labels.json", "splits.csv", "metrics.json",
             "checkpoints/best.ckpt", "checkpoints/last.ckpt"}
METRIC_KEYS = {"val_acc", "val_f1_macro", "val_loss", "per_class", "epochs", "train_images_per_s", "device",
               "precision", "backbone", "pretrained"}
SCALARS = {"train/loss_epoch", "val/loss", "val/acc", "val/f1_macro", "train/images_per_s",
           "weights_learning_rate/head", "weights_learning_rate/backbone_1"}


def files_in(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


def test_train_fills_the_run_folder(trained_run: Path) -> None:
    """One `train` leaves config, labels, split, both checkpoints, metrics and TensorBoard events."""
    files = files_in(trained_run)
    assert RUN_FILES <= files
    assert any(name.startswith("events.out.tfevents") for name in files)
    assert json.loads((trained_run / "labels.json").read_text()) == sorted(CLASSES)
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert config["backbone"] == TINY_MODEL and config["epochs"] == 2


def test_metrics_json_has_the_final_numbers(trained_run: Path) -> None:
    """metrics.json holds the SPEC's keys, per-class numbers for every class, and the weights' source."""
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert set(metrics["per_class"]) == set(CLASSES)
    assert 0.0 <= metrics["val_acc"] <= 1.0 and metrics["epochs"] == 2
    assert metrics["device"] == "cpu" and metrics["precision"] == "32"
    assert metrics["pretrained"].startswith("none") and metrics["train_images_per_s"] > 0


def test_tensorboard_has_the_scalars(trained_run: Path) -> None:
    """The event file has training and validation curves, both learning rates and the speed."""
    events = EventAccumulator(str(trained_run)).Reload()
    assert SCALARS <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val/acc")) == 2  # one point per epoch


def test_splits_csv_is_stratified_and_has_no_overlap(trained_run: Path) -> None:
    """Every class appears in train and val, and no image is in both."""
    rows = list(csv.DictReader((trained_run / "splits.csv").read_text().splitlines()))
    by_split = {split: {r["path"] for r in rows if r["split"] == split} for split in ("train", "val")}
    assert not by_split["train"] & by_split["val"]
    val_classes = Counter(r["class"] for r in rows if r["split"] == "val")
    assert set(val_classes) == set(CLASSES) and len(set(val_classes.values())) == 1


def test_split_is_reproducible_with_the_seed(image_folder: Path) -> None:
    """The same seed gives the same validation images; another seed gives others."""
    first = {s.path for s in find_dataset(image_folder, 0.25, seed=1).val}
    again = {s.path for s in find_dataset(image_folder, 0.25, seed=1).val}
    other = {s.path for s in find_dataset(image_folder, 0.25, seed=2).val}
    assert first == again and first != other
    assert len(first) == 3 * 3  # 25% of 12 per class


def test_val_folder_is_used_when_present(tmp_path: Path) -> None:
    """With a val/ folder no split is made, and test/ images are kept apart."""
    root = make_image_folder(tmp_path / "d", per_class=4, splits=("train", "val", "test"))
    splits = find_dataset(root)
    assert not splits.val_was_made
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 12, 12)


def test_last_checkpoint_is_written_every_epoch_even_without_improvement(image_folder: Path, tmp_path: Path) -> None:
    """A crash costs at most one epoch: last.ckpt follows every epoch, also when best.ckpt does not move."""
    args = [*FAST, "--epochs", "3", "--freeze-epochs", "3", "--lr", "1e-12"]  # a model that cannot improve
    assert run_cli("train", "--data", str(image_folder), *args, "--output", str(tmp_path), "--name", "flat") == 0
    checkpoints = tmp_path / "flat" / "checkpoints"
    assert torch.load(checkpoints / "best.ckpt", weights_only=True)["epoch"] == 0
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2


def test_an_epoch_that_is_the_best_is_written_once(image_folder: Path, tmp_path: Path) -> None:
    """The first epoch is always the best so far: best.ckpt and last.ckpt are then one file on disk."""
    args = [*FAST, "--epochs", "1", "--freeze-epochs", "1"]
    assert run_cli("train", "--data", str(image_folder), *args, "--output", str(tmp_path), "--name", "once") == 0
    best, last = (tmp_path / "once" / "checkpoints" / name for name in ("best.ckpt", "last.ckpt"))
    assert best.stat().st_ino == last.stat().st_ino and last.stat().st_nlink == 2
    assert torch.load(last, weights_only=True)["epoch"] == 0


# Runs `train` in a child process whose second checkpoint write is cut off half-way by kill -9.
KILLED_MID_WRITE = """
import os, signal, sys, torch
from {{ cookiecutter.package_name }}.cli import main
real_save, calls = torch.save, []

def save_then_die(checkpoint, file, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # epoch 2: part of the file, then the process is gone
        file.write(b"half a checkpoint"); file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(checkpoint, file, *args, **kwargs)

torch.save = save_then_die
main(sys.argv[1:])
"""


def test_kill_9_while_a_checkpoint_is_written_loses_only_that_epoch(image_folder: Path, tmp_path: Path) -> None:
    """The write goes to a temporary file that is renamed into place: after kill -9 mid-write,
    last.ckpt still holds the previous epoch whole, and --resume continues from it."""
    args = ["train", "--data", str(image_folder), *FAST, "--epochs", "3", "--output", str(tmp_path), "--name", "k"]
    done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    checkpoints = tmp_path / "k" / "checkpoints"
    assert any(path.name.endswith(".tmp") for path in checkpoints.iterdir())  # the kill hit a write
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0
    assert run_cli("train", "--resume", str(tmp_path / "k")) == 0
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2
    assert json.loads((tmp_path / "k" / "metrics.json").read_text())["epochs"] == 3


def test_resume_continues_the_epoch_count_in_the_same_run(image_folder: Path, tmp_path: Path) -> None:
    """--resume RUN with more epochs continues from last.ckpt into the same folder and event file set."""
    args = ["--data", str(image_folder), *FAST, "--output", str(tmp_path), "--name", "r"]
    assert run_cli("train", *args) == 0
    run = tmp_path / "r"
    before = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert run_cli("train", "--resume", str(run), "--epochs", "3") == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # Continued, not restarted: two epochs' steps plus one more epoch's worth.
    assert after["global_step"] == before["global_step"] * 3 // 2
    events = EventAccumulator(str(run)).Reload()
    assert [e.step for e in events.Scalars("val/acc")] == sorted({e.step for e in events.Scalars("val/acc")})
    assert len(events.Scalars("val/acc")) == 3
    assert list(tmp_path.iterdir()) == [run]


def test_a_second_run_with_the_same_name_is_refused(trained_run: Path, image_folder: Path, capsys) -> None:
    """Starting a new run in a folder that already holds one points to --resume instead of overwriting."""
    args = ["--data", str(image_folder), *FAST, "--output", str(trained_run.parent), "--name", "shared"]
    code = run_cli("train", *args)
    assert code == 2
    assert "--resume" in capsys.readouterr().err
    assert (trained_run / "checkpoints" / "best.ckpt").is_file()


def test_frozen_epochs_train_only_the_head() -> None:
    """During a frozen epoch the backbone has no gradients and its BatchNorm statistics stay put."""
    network = timm.create_model(TINY_MODEL, num_classes=3)
    model = Classifier(network, TINY_MODEL, list(CLASSES), model_data_config(network, 32), freeze_epochs=1)
    model.train()
    model.on_train_epoch_start()  # epoch 0 < freeze_epochs
    assert not any(p.requires_grad for p in model.backbone_parameters())
    assert all(p.requires_grad for p in model.head_parameters())
    batch_norm = network.bn1
    before = batch_norm.running_mean.clone()
    logits = model(torch.randn(4, 3, 32, 32))
    logits.sum().backward()
    assert torch.equal(batch_norm.running_mean, before)
    assert network.conv_stem.weight.grad is None and network.get_classifier().weight.grad is not None


def test_a_fine_tuning_epoch_leaves_the_plain_average_of_its_batches_in_batchnorm() -> None:
    """Evaluation uses the statistics of this epoch's batches, each counted once: not the ImageNet ones
    the layer started with, and not mostly the last few batches (a moving average's weakness)."""
    network = timm.create_model(TINY_MODEL, num_classes=3)
    model = Classifier(network, TINY_MODEL, list(CLASSES), model_data_config(network, 32), freeze_epochs=0)
    batch_norm = network.bn1
    batch_norm.running_mean.fill_(5.0)  # statistics from before, e.g. ImageNet's
    batch_means = []
    batch_norm.register_forward_hook(lambda module, inputs, output: batch_means.append(inputs[0].mean((0, 2, 3))))
    model.train()
    model.on_train_epoch_start()  # epoch 0, nothing frozen: fine-tuning
    for shift in (0.0, 1.0, 2.0, 3.0):
        model(torch.randn(4, 3, 32, 32) + shift)
    expected = torch.stack(batch_means).mean(0).detach()
    assert torch.allclose(batch_norm.running_mean, expected, atol=1e-5)


def test_python_dash_m_and_the_console_script_both_answer() -> None:
    """`python -m {{ cookiecutter.package_name }} --help` works (the console script calls the same main)."""
    done = subprocess.run([sys.executable, "-m", "{{ cookiecutter.package_name }}", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--freeze-epochs" in done.stdout


def test_data_errors_are_one_line(tmp_path: Path, capsys) -> None:
    """A missing folder and a single-class folder each end in one line and exit code 1."""
    assert run_cli("train", "--data", str(tmp_path / "missing"), *FAST, "--output", str(tmp_path)) == 1
    assert "does not exist" in capsys.readouterr().err
    make_image_folder(tmp_path / "one", per_class=3, classes=("cat",))
    runs = tmp_path / "runs"
    assert run_cli("train", "--data", str(tmp_path / "one"), *FAST, "--output", str(runs)) == 1
    err = capsys.readouterr().err.strip()
    assert "at least 2" in err and err.count("\n") == 0
    assert not runs.exists() or not any(runs.iterdir())  # no empty run folder left behind


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_before_the_first_checkpoint_does_not_offer_a_resume(image_folder: Path, tmp_path: Path,
                                                                         monkeypatch, capsys) -> None:
    """The new run folder is removed, so the message must not point at it."""
    monkeypatch.setattr("{{ cookiecutter.package_name }}.train.write_csv", disk_full)
    assert run_cli("train", "--data", str(image_folder), *FAST, "--output", str(tmp_path), "--name", "full") == 1
    err = capsys.readouterr().err.strip()
    assert "disk is full" in err and "--resume" not in err and err.count("\n") == 0
    assert not (tmp_path / "full").exists()


def test_a_full_disk_after_a_checkpoint_names_the_run_to_resume(image_folder: Path, tmp_path: Path,
                                                                monkeypatch, capsys) -> None:
    monkeypatch.setattr("{{ cookiecutter.package_name }}.train.write_report", disk_full)
    assert run_cli("train", "--data", str(image_folder), *FAST, "--output", str(tmp_path), "--name", "late") == 1
    err = capsys.readouterr().err.strip()
    assert f"train --resume {tmp_path / 'late'}" in err and err.count("\n") == 0
    assert (tmp_path / "late" / "checkpoints" / "last.ckpt").is_file()


def test_a_full_disk_while_a_checkpoint_is_written_leaves_a_whole_one_to_resume(image_folder: Path, tmp_path: Path,
                                                                                 monkeypatch, capsys) -> None:
    """The checkpoint is written in a background thread; its full-disk error still ends the run with
    one line, and last.ckpt is a whole earlier checkpoint, never a half-written one."""
    real_save, calls = torch.save, []

    def save_until_the_disk_is_full(checkpoint, file, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(checkpoint, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    assert run_cli("train", "--data", str(image_folder), *FAST, "--output", str(tmp_path), "--name", "full") == 1
    err = capsys.readouterr().err.strip()
    assert "disk is full" in err and f"train --resume {tmp_path / 'full'}" in err and err.count("\n") == 0
    assert torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] in (0, 1)


def test_metrics_of_a_run_whose_last_epoch_was_best_equal_a_fresh_validation(image_folder: Path, tmp_path: Path):
    """When the last epoch is the best (one file for best.ckpt and last.ckpt), train reuses that epoch's
    validation instead of loading the checkpoint and validating again: the numbers are the same."""
    import lightning as L

    from {{ cookiecutter.package_name }}.data import ImageFolderDataModule

    assert run_cli("train", "--data", str(image_folder), *FAST, "--epochs", "1", "--freeze-epochs", "0",
                   "--output", str(tmp_path), "--name", "one") == 0
    run = tmp_path / "one"
    best = run / "checkpoints" / "best.ckpt"
    assert best.samefile(run / "checkpoints" / "last.ckpt")
    model = Classifier.load_from_checkpoint(best, model=timm.create_model(TINY_MODEL, num_classes=len(CLASSES)),
                                            weights_only=True)
    splits = find_dataset(image_folder, seed=42)
    datamodule = ImageFolderDataModule(splits, model.hparams.data_config, batch_size=8)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    fresh = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_acc"] == round(fresh["val/acc"], 4)
    assert metrics["val_loss"] == round(fresh["val/loss"], 4)
