"""The device policy: what `auto` picks and the line that explains it."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }} import device
from {{ cookiecutter.package_name }}.device import choose_device
from {{ cookiecutter.package_name }}.errors import UserError


def test_cpu_trains_in_fp32_and_says_why(monkeypatch) -> None:
    """Without a GPU, auto picks the CPU, full precision and channels_last, and the line explains them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    plan = choose_device()
    assert (plan.accelerator, plan.precision, plan.pin_memory, plan.channels_last) == ("cpu", "32", False, True)
    assert "no GPU was found" in plan.description and "precision 32" in plan.description
    assert "channels_last" in plan.description


def test_cuda_with_bf16_picks_bf16_mixed_and_channels_last(monkeypatch) -> None:
    """On a CUDA GPU with bfloat16, auto picks bf16-mixed, pinned memory and channels_last."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    plan = choose_device()
    assert (plan.accelerator, plan.precision, plan.pin_memory, plan.channels_last) == ("cuda", "bf16-mixed", True, True)
    assert plan.lightning_accelerator == "gpu"


def test_compile_runs_on_cuda_only_and_the_device_line_says_so(monkeypatch) -> None:
    """--compile is on (and named) on a CUDA GPU; on the CPU it is left off, with the reason."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    gpu = choose_device(compile=True)
    assert gpu.compile and "torch.compile on" in gpu.description
    assert not choose_device().compile and "compile" not in choose_device().description
    cpu = choose_device("cpu", compile=True)
    assert not cpu.compile and "--compile left off" in cpu.description


def test_older_cuda_gpu_gets_fp16_mixed(monkeypatch) -> None:
    """A CUDA GPU without bfloat16 gets 16-mixed."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Old GPU")
    assert choose_device().precision == "16-mixed"


def test_apple_gpu_trains_in_fp32(monkeypatch) -> None:
    """On an Apple GPU, auto picks mps and fp32."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    plan = choose_device()
    assert (plan.accelerator, plan.precision) == ("mps", "32")


def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch) -> None:
    """--accelerator gpu on a machine without CUDA fails with advice, not a Lightning traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU"):
        choose_device("gpu")


def test_mixed_precision_on_cpu_is_refused(monkeypatch) -> None:
    """16-mixed on the CPU is refused with the fix."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        choose_device("cpu", "16-mixed")


def test_small_cpu_computes_on_every_core_without_worker_processes(monkeypatch) -> None:
    """On 2 cores a loader process would steal a core from training; with 8 one worker decodes."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(device, "cpu_count", lambda: 2)
    plan = device.choose_device()
    assert (plan.num_workers, plan.threads) == (0, 2)
    monkeypatch.setattr(device, "cpu_count", lambda: 8)
    plan = device.choose_device()
    assert (plan.num_workers, plan.threads) == (1, 7)
