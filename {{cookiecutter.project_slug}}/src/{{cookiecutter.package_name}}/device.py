"""Pick where and how to train, in one place, and say why.

``choose_device`` turns ``auto`` settings into concrete ones: CUDA if there is an NVIDIA GPU, else an
Apple GPU (MPS), else the CPU. Mixed precision only on CUDA, because that is where it pays:
bf16 when the GPU supports it (no loss scaling needed), fp16 otherwise. Apple GPUs and CPUs train
in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from {{ cookiecutter.package_name }}.dataset.parallel import cpu_count
from {{ cookiecutter.package_name }}.errors import UserError


@dataclass
class DevicePlan:
    """Concrete hardware settings for one run (what ``auto`` resolved to)."""

    accelerator: str  # "cuda", "mps" or "cpu"
    precision: str  # "bf16-mixed", "16-mixed" or "32"
    num_workers: int  # DataLoader worker processes
    threads: int  # threads PyTorch computes with (torch.set_num_threads)
    pin_memory: bool  # page-locked host memory speeds up copies to a CUDA GPU
    channels_last: bool  # memory layout that GPU tensor cores and CPU convolution kernels prefer
    description: str  # the one line we print at start
    compile: bool = False  # torch.compile the network (--compile, CUDA only)

    @property
    def lightning_accelerator(self) -> str:
        return "gpu" if self.accelerator == "cuda" else self.accelerator


def choose_device(accelerator: str = "auto", precision: str = "auto", num_workers: int | str = "auto",
                  compile: bool = False) -> DevicePlan:
    """Resolve ``auto`` choices for this machine and describe them in one line."""
    has_cuda = torch.cuda.is_available()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    requested = {"gpu": "cuda"}.get(accelerator, accelerator)

    if requested == "auto":
        if has_cuda:
            device, why = "cuda", "an NVIDIA GPU was found"
        elif has_mps:
            device, why = "mps", "an Apple GPU was found"
        else:
            device, why = "cpu", "no GPU was found"
    else:
        device, why = requested, "you asked for it"
        if device == "cuda" and not has_cuda:
            raise UserError("--accelerator gpu was asked for, but PyTorch sees no CUDA GPU; use auto or cpu.")
        if device == "mps" and not has_mps:
            raise UserError("--accelerator mps was asked for, but no Apple GPU is available; use auto or cpu.")

    if precision == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            precision, precision_why = "bf16-mixed", "this GPU supports bfloat16"
        elif device == "cuda":
            precision, precision_why = "16-mixed", "this GPU has no bfloat16"
        else:
            precision, precision_why = "32", "mixed precision only pays on CUDA GPUs"
    else:
        precision_why = "you asked for it"
        if precision != "32" and device != "cuda":
            raise UserError(f"precision {precision} needs a CUDA GPU; use --precision 32 or auto on {device}.")

    cores = cpu_count()
    if num_workers == "auto":
        # On a GPU, workers decode and crop images while the GPU computes; two cores stay free for the
        # training loop and the pinned-memory copies, which slow down when workers crowd them out.
        # On a CPU the same cores do both:
        # small datasets are decoded once into memory (dataset/cache.py), so loading a batch costs a few
        # percent of a training step and the main process does it between steps; a worker process
        # would only take cores away from the compute threads. Without a cache (big datasets) one
        # worker decodes while the others compute, once there are enough cores to share.
        num_workers = max(1, min(12, cores - 2)) if device == "cuda" else (0 if cores < 8 else 1)
    num_workers = max(0, int(num_workers))
    # Compute threads: every core, except those a CPU-side worker keeps busy.
    threads = max(1, cores - num_workers) if device == "cpu" else max(1, min(cores, torch.get_num_threads()))

    # channels_last (pixels stored colour-by-colour) suits the convolution kernels of NVIDIA GPUs and of
    # CPUs, where it trains faster and never slower. Apple GPUs are left in the default layout.
    channels_last = device in ("cuda", "cpu")

    # torch.compile makes GPU steps faster after a compile of about a minute; on a CPU or an Apple GPU
    # the compile takes longer than it saves in a run of this size, so --compile is left off there.
    compiled = compile and device == "cuda"
    if compile and not compiled:
        compile_note = "; --compile left off (it only pays on CUDA GPUs)"
    else:
        compile_note = "; torch.compile on" if compiled else ""

    name = torch.cuda.get_device_name(0) if device == "cuda" else {"mps": "Apple GPU", "cpu": "CPU"}[device]
    description = (
        f"Device: {name} ({why}); precision {precision} ({precision_why}); "
        f"{num_workers} data worker{'s' if num_workers != 1 else ''} on {cores} CPU core{'s' if cores != 1 else ''}"
        + ("; channels_last" if channels_last else "")
        + compile_note
    )
    return DevicePlan(accelerator=device, precision=precision, num_workers=num_workers, threads=threads,
                      pin_memory=device == "cuda", channels_last=channels_last, description=description,
                      compile=compiled)
