"""Checkpoints: written so that a crash never leaves half of one, and read back with a one-line refusal
for anything that is not a checkpoint of this project.

    runs/<name>/checkpoints/best.ckpt   the epoch with the best validation macro F1
    runs/<name>/checkpoints/last.ckpt   the latest epoch (what --resume continues from)

Every checkpoint carries ``PROJECT`` among its settings (model.py puts it there), so another project's
checkpoints are refused instead of half-loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import timm
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.training.backbones import build_network
from {{ cookiecutter.package_name }}.training.mirror import MirrorAveraged
from {{ cookiecutter.package_name }}.training.run_folder import WHAT_TO_PASS

PROJECT = "{{ cookiecutter.package_name }}"  # stored in checkpoints so another project's are refused


def best_and_last(folder: Path) -> list[ModelCheckpoint]:
    """Lightning callbacks that write checkpoints/best.ckpt (best validation macro F1) and last.ckpt."""
    best = ModelCheckpoint(
        dirpath=folder,
        filename="best",
        monitor="val/f1_macro",
        mode="max",
        enable_version_counter=False,  # overwrite best.ckpt instead of writing best-v1.ckpt
    )
    # checkpoints/last.ckpt after every epoch, what --resume uses. A checkpoint of its own: Lightning's
    # save_last=True only rewrites last.ckpt in epochs that also improved best.ckpt. In those epochs
    # SafeCheckpointIO makes last.ckpt a hard link to best.ckpt, so each epoch is written once.
    latest = ModelCheckpoint(dirpath=folder, filename="last", enable_version_counter=False)
    return [best, latest]


class SafeCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints so that a crash, even ``kill -9``, never leaves a half-written one, and
    writes each epoch once.

    Each file is written next to its final name and then renamed into place, which the operating
    system does in one step: readers (``--resume``) find the previous checkpoint or the new one, never a
    mix. When best.ckpt and last.ckpt hold the same epoch (the epoch was the best so far), the second
    becomes a hard link to the first instead of a second copy. Lightning's ``AsyncCheckpointIO`` runs
    this in a background thread, so training goes on while the file is written (see train.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self._previous: tuple[Any, Path] | None = None  # (global step, file) of the last checkpoint written

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        """Called by Lightning (through AsyncCheckpointIO's thread) for every checkpoint to write."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        # A leftover from a killed run may be a hard link to another checkpoint: remove it, never overwrite it.
        temporary.unlink(missing_ok=True)
        step = checkpoint.get("global_step")
        previous = self._previous
        if previous and previous[0] == step and previous[1] != path and previous[1].is_file():
            try:
                os.link(previous[1], temporary)
            except OSError:  # a file system without hard links
                shutil.copyfile(previous[1], temporary)
        else:
            with open(temporary, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())  # on disk before the rename, so a power cut cannot leave an empty file
        os.replace(temporary, path)
        self._previous = (step, path)


def read_checkpoint(checkpoint: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The hyperparameters and weights of one of this project's checkpoints, or a one-line refusal."""
    try:
        # weights_only: a checkpoint is plain tensors and settings; nothing in it may run code.
        content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{checkpoint} cannot be read as a checkpoint of this project ({reason[:120]}); "
                        f"{WHAT_TO_PASS}.") from None
    hparams = content.get("hyper_parameters") if isinstance(content, dict) else None
    if not isinstance(hparams, dict) or "state_dict" not in content:
        raise UserError(f"{checkpoint} was not written by this project's train command (it has no model settings); "
                        f"{WHAT_TO_PASS}.")
    project = hparams.get("project")
    if project != PROJECT:
        raise UserError(f"{checkpoint} belongs to another project ({project or 'unknown'}), not {PROJECT}; "
                        "use it with the project that trained it, or train this one.")
    missing = [key for key in ("backbone", "class_names", "data_config") if key not in hparams]
    if missing:
        raise UserError(f"{checkpoint} lacks {', '.join(missing)} in its settings; it is damaged or too old. "
                        "Train again to get a new one.")
    return hparams, content["state_dict"]


def load_network(checkpoint: Path, labels_file: Path | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The timm network of a checkpoint, rebuilt from its own settings (no download), with its weights;
    and those settings. ``labels_file``: the run's labels.json, which must list the same classes."""
    hparams, state = read_checkpoint(checkpoint)
    class_names = list(hparams["class_names"])
    if labels_file is not None and labels_file.is_file():
        labels = json.loads(labels_file.read_text(encoding="utf-8"))
        if labels != class_names:
            raise UserError(f"{checkpoint} was trained on classes {class_names} but {labels_file} lists {labels}; "
                            "the checkpoint does not belong to this run folder.")
    backbone = hparams["backbone"]
    if not timm.is_model(backbone):
        raise UserError(f"this timm version has no model '{backbone}' (the checkpoint's backbone); "
                        "upgrade timm with: pip install -U timm")
    network = build_network(backbone, len(class_names), hparams["data_config"]["input_size"][-1])
    weights = {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
    try:
        network.load_state_dict(weights)
    except RuntimeError:
        raise UserError(f"the weights in {checkpoint} do not fit a {backbone} with {len(class_names)} classes; "
                        "the file is damaged or was edited. Use another checkpoint of the run.") from None
    # Predict as the run validated: runs since the mirror average (training/mirror.py) store it as True.
    return (MirrorAveraged(network) if hparams.get("mirror_average") else network), hparams
