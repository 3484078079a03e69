"""Several processes training one model (several GPUs, or several machines): DDP.

A launcher (Lightning's own, torchrun or SLURM) starts one process per GPU. They all train; only the
main one writes the run folder, TensorBoard events and the report. Lightning knows which process is
the main one too (``trainer.is_global_zero``), but only once the trainer exists.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch

# Environment variables that launchers set in each process they start: Lightning's own launcher
# (LOCAL_RANK, NODE_RANK), torchrun (RANK) and SLURM (SLURM_PROCID).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")
RUN_FOLDER_VARIABLE = "{{ cookiecutter.package_name | upper }}_RUN_FOLDER"  # rank 0 tells its helpers where the run is


def is_main_process() -> bool:
    """True unless a launcher started this process as a helper (rank > 0) of a multi-GPU or multi-node run."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)


@contextlib.contextmanager
def run_folder_for_helpers(path: Path) -> Iterator[None]:
    """While the main process trains, the helpers Lightning's launcher starts find the run folder here
    (they inherit the environment). Put back as it was afterwards."""
    before = os.environ.get(RUN_FOLDER_VARIABLE)
    os.environ[RUN_FOLDER_VARIABLE] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_FOLDER_VARIABLE, None)
        else:
            os.environ[RUN_FOLDER_VARIABLE] = before


def helpers_run_folder(output: str) -> Path:
    """In a helper process: the main process's run folder (see ``run_folder_for_helpers``)."""
    return Path(os.environ.get(RUN_FOLDER_VARIABLE) or Path(output) / "helper")


def lightning_strategy(strategy: str, devices: int | str, num_nodes: int, freeze_epochs: int) -> str:
    """Several processes (DDP) must be told that the frozen backbone gets no gradients at first."""
    several = devices not in ("auto", 1) or num_nodes > 1
    if several and freeze_epochs > 0 and strategy in ("auto", "ddp"):
        return "ddp_find_unused_parameters_true"
    return strategy


def main_goes_on_alone(trainer: L.Trainer) -> bool:
    """After fit: False in a helper process, which is done. With several processes the main one works
    alone from here on: it evaluates the best checkpoint on the whole val set and writes the report."""
    if trainer.world_size > 1:
        trainer.strategy.barrier()
        torch.distributed.destroy_process_group()
    return trainer.is_global_zero


def gather_predictions(module: L.LightningModule, results: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """With several processes each validates a share of the images: collect every share, so the
    reports see the whole val set. Lightning's sampler repeats a few images to give every process
    the same number; each image is kept once, in dataset order."""
    gathered = {k: v.reshape(-1, *v.shape[2:]) for k, v in module.all_gather(results).items()}
    order = torch.argsort(gathered["indices"], stable=True)
    indices = gathered["indices"][order]
    first = torch.ones_like(indices, dtype=torch.bool)
    first[1:] = indices[1:] != indices[:-1]
    return {k: v[order][first] for k, v in gathered.items()}
