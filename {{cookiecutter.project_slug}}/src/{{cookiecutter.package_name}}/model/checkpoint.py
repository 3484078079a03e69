"""Loading a checkpoint back into a ``Classifier``, with a one-line refusal for anything that is not a
checkpoint of this project (another project's, a plain weights file, a damaged or tampered file).

``Classifier.load_from_checkpoint`` (Lightning's) rebuilds the network from the settings saved in the
checkpoint, without downloading anything, and loads its weights; ``load_checkpoint`` checks the file
first, so a mistake ends in one line instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
import torch

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.model.classifier import PROJECT, Classifier

HINT = "pass a .ckpt file written by this project's train command, or its run folder"


def read_settings(checkpoint: Path) -> dict[str, Any]:
    """The settings (Lightning's hyperparameters) of one of this project's checkpoints, or a one-line refusal."""
    try:
        # weights_only: a checkpoint is plain tensors and settings; nothing in it may run code.
        # mmap: only the settings are read here; the weights stay on disk until the model loads them.
        content = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{checkpoint} cannot be read as a checkpoint of this project ({reason[:120]}); "
                        f"{HINT}.") from None
    hparams = content.get("hyper_parameters") if isinstance(content, dict) else None
    if not isinstance(hparams, dict) or "state_dict" not in content:
        raise UserError(f"{checkpoint} was not written by this project's train command (it has no model settings); "
                        f"{HINT}.")
    project = hparams.get("project")
    if project != PROJECT:
        raise UserError(f"{checkpoint} belongs to another project ({project or 'unknown'}), not {PROJECT}; "
                        "use it with the project that trained it, or train this one.")
    missing = [key for key in ("settings", "class_names", "data_config") if key not in hparams]
    if missing:
        raise UserError(f"{checkpoint} lacks {', '.join(missing)} in its settings; it is damaged or too old. "
                        "Train again to get a new one.")
    return hparams


def load_checkpoint(checkpoint: Path, labels_file: Path | None = None) -> Classifier:
    """The ``Classifier`` of a checkpoint, in evaluation mode on the CPU. ``labels_file``: the run's
    labels.json, which must list the same classes."""
    hparams = read_settings(checkpoint)
    class_names = list(hparams["class_names"])
    if labels_file is not None and labels_file.is_file():
        labels = json.loads(labels_file.read_text(encoding="utf-8"))
        if labels != class_names:
            raise UserError(f"{checkpoint} was trained on classes {class_names} but {labels_file} lists {labels}; "
                            "the checkpoint does not belong to this run folder.")
    backbone = hparams["settings"]["backbone"]
    if not timm.is_model(backbone):
        raise UserError(f"this timm version has no model '{backbone}' (the checkpoint's backbone); "
                        "upgrade timm with: pip install -U timm")
    try:
        model = Classifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    except RuntimeError:
        raise UserError(f"the weights in {checkpoint} do not fit a {backbone} with {len(class_names)} classes; "
                        "the file is damaged or was edited. Use another checkpoint of the run.") from None
    return model.eval()
