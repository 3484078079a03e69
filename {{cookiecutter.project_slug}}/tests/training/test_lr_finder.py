"""--lr auto: the learning-rate finder picks a rate, and the run records it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from {{ cookiecutter.package_name }}.training import lr_finder

from ..conftest import FAST, run_cli


@pytest.mark.slow  # the search adds 20 training steps to a run
def test_lr_auto_writes_the_chosen_rate_into_config_yaml(image_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """The chosen rate is a number in config.yaml; its curve is in TensorBoard and report.md."""
    monkeypatch.setattr(lr_finder, "MIN_STEPS", 20)  # enough points for a suggestion, and a quick test
    assert run_cli("train", "--data", str(image_folder), *FAST, "--lr", "auto",
                   "--output", str(tmp_path), "--name", "auto") == 0
    run = tmp_path / "auto"
    lr = yaml.safe_load((run / "config.yaml").read_text())["lr"]
    assert isinstance(lr, float) and 1e-6 <= lr <= 1.0
    assert (run / "lr_finder.png").is_file()
    assert "![learning-rate finder](lr_finder.png)" in (run / "report.md").read_text()
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert "train/lr_finder" in events.Tags()["images"]
    assert not list(run.glob(".lr_find*.ckpt"))  # the finder's temporary copy of the weights is gone


def test_resuming_with_lr_auto_keeps_the_runs_rate(trained_run: Path, tmp_path: Path) -> None:
    """A resumed run does not search again: it keeps the rate its checkpoint was trained with."""
    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    before = yaml.safe_load((run / "config.yaml").read_text())["lr"]
    assert run_cli("train", "--resume", str(run), "--lr", "auto") == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["lr"] == before
    assert not (run / "lr_finder.png").exists()


def test_lr_auto_on_several_devices_is_refused_with_the_way_out(image_folder: Path, tmp_path: Path, capsys) -> None:
    """Every process would search on its own; the message says how to do it on one device first."""
    code = run_cli("train", "--data", str(image_folder), *FAST, "--lr", "auto", "--devices", "2",
                   "--output", str(tmp_path))
    assert code == 1
    assert "--lr auto works on one device" in capsys.readouterr().err
