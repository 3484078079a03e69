"""Several processes train one model (DDP) and the run folder still looks like a one-process run.

Runs a real 2-process training on the CPU (Lightning's DDP over gloo) through the command line,
in a subprocess, because Lightning starts the second process by re-running the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }}.training import processes
from {{ cookiecutter.package_name }}.training.processes import gather_predictions

from ..conftest import FAST


class TwoProcesses:
    """Stands in for a LightningModule in a 2-process run: ``all_gather`` stacks both shares."""

    def __init__(self, other: dict[str, torch.Tensor]):
        self.other = other

    def all_gather(self, mine: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.stack([v, self.other[k]]) for k, v in mine.items()}


def test_gathered_predictions_cover_each_val_image_once_in_order() -> None:
    """Each process validated every other image; the sampler repeated image 0 to even the shares."""
    share_0 = {"indices": torch.tensor([0, 2, 4]), "probs": torch.tensor([[1.0], [3.0], [5.0]])}
    share_1 = {"indices": torch.tensor([1, 3, 0]), "probs": torch.tensor([[2.0], [4.0], [1.0]])}
    results = gather_predictions(TwoProcesses(share_1), share_0)
    assert results["indices"].tolist() == [0, 1, 2, 3, 4]
    assert results["probs"].flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.slow
def test_two_process_ddp_training_writes_one_complete_run(image_folder: Path, tmp_path: Path) -> None:
    """Two CPU processes train together; only the main one writes, and its metrics cover every val image."""
    src = Path({{ cookiecutter.package_name }}.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    output = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "train", "--data", str(image_folder), *FAST,
         "--devices", "2", "--strategy", "ddp", "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    assert [p.name for p in output.iterdir()] == [next(output.iterdir()).name], "one run folder, not one per process"
    (metrics_file,) = list(output.rglob("metrics.json"))
    metrics = json.loads(metrics_file.read_text())
    run = metrics_file.parent
    val_images = sum(1 for line in (run / "splits.csv").read_text().splitlines() if line.endswith(",val"))
    assert sum(c["support"] for c in metrics["per_class"].values()) == val_images == metrics["images"]["val"]
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "report.md").is_file()
    writers = {path.name.split(".")[-2] for path in run.rglob("events.out.tfevents.*")}
    assert len(writers) == 1, "TensorBoard events come from one process (its id is in the file name)"
    assert result.stdout.count("Run folder:") == 2, "the helper process prints nothing"


def test_only_the_first_process_of_a_launch_is_the_main_one(monkeypatch) -> None:
    """Lightning's launcher, torchrun and SLURM mark helper processes with rank variables."""
    for name in processes.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert processes.is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "0")
    assert processes.is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not processes.is_main_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")
    assert not processes.is_main_process()
