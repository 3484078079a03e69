"""On an NVIDIA GPU: mixed precision and channels_last for real. Skipped on machines without CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from .conftest import FAST, run_cli

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")


def test_training_on_the_gpu_uses_mixed_precision(image_folder: Path, tmp_path: Path, capsys) -> None:
    """`train --accelerator auto` on CUDA picks the GPU and bf16/16-mixed, and records them."""
    flags = [flag for flag in FAST if flag not in ("--accelerator", "cpu")]
    assert run_cli("train", "--data", str(image_folder), *flags, "--output", str(tmp_path), "--name", "gpu") == 0
    out = capsys.readouterr().out
    assert "an NVIDIA GPU was found" in out and "channels_last" in out
    metrics = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    assert metrics["device"].startswith("cuda")
    assert metrics["precision"] == ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed")


def test_predict_on_the_gpu_agrees_with_the_cpu(trained_run: Path, image_folder: Path, tmp_path: Path) -> None:
    """A CPU-trained run predicts on the GPU with the same top-1 classes as on the CPU."""
    images = [str(p) for p in sorted((image_folder / "train").rglob("*.png"))[:8]]
    tables = {}
    for device in ("cpu", "gpu"):
        csv_file = tmp_path / f"{device}.csv"
        assert run_cli("predict", str(trained_run), *images, "--accelerator", device, "--csv", str(csv_file)) == 0
        tables[device] = [line.split(",")[:2] for line in csv_file.read_text().splitlines()]
    assert tables["cpu"] == tables["gpu"]


def test_device_augmentation_never_makes_the_cpu_wait_for_the_gpu() -> None:
    """The crop, flip and colour jitter of a training batch run on the GPU without a host-device sync,
    also after the model (and so anything registered in it) has moved to the GPU."""
    from types import SimpleNamespace

    from .conftest import tiny_classifier

    model = tiny_classifier(image_size=64).cuda()
    model._trainer = SimpleNamespace(training=True)  # what Lightning's trainer says during fit
    batch = (torch.randint(0, 256, (32, 3, 73, 73), dtype=torch.uint8).cuda(), torch.zeros(32).long().cuda(),
             torch.arange(32).cuda())
    model.on_after_batch_transfer(batch, 0)  # warm-up: kernels load, memory is allocated
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        images, _, _ = model.on_after_batch_transfer(batch, 0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert images.shape == (32, 3, 64, 64) and images.is_cuda
