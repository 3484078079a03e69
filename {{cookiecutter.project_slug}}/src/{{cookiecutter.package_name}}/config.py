"""The training configuration: one object, its defaults, and strict loading.

Every setting lives in ``Config`` below. ``configs/default.yaml`` is the same settings with a
comment on each, for you to copy and edit; ``train --config FILE`` reads such a file and command-line
flags override it. A misspelt key or a wrong type stops the run with a one-line message (the rules
for reading text are in training/settings.py); ``validate`` holds the ranges.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.training.settings import AUTO, closest_key, coerce, read_yaml
from {{ cookiecutter.package_name }}.training.writing import write_atomically


def _setting(default: Any, group: str, help: str, choices: tuple[str, ...] = ()) -> Any:
    """A config field with its command-line help group and text (shown by ``train --help``)."""
    return field(default=default, metadata={"group": group, "help": help, "choices": choices})


@dataclass
class Config:
    """All the knobs of one training run. Edit defaults here or, better, in a YAML file."""

    # Data
    data: str = _setting("data/my-pets", "data", "dataset folder: DATA/train/<class>/*.jpg (val/, test/ optional)")
    image_size: int = _setting({{ cookiecutter.image_size }}, "data", "training image size in pixels (square)")
    val_fraction: float = _setting(0.2, "data", "share of train images held out for validation when there is no val/")
    num_workers: int | str = _setting(AUTO, "data", "image-loading processes: auto or a number")

    # Model
    backbone: str = _setting("{{ cookiecutter.backbone }}", "model", "any timm model name, e.g. resnet50")
    pretrained: bool = _setting(True, "model", "start from pretrained ImageNet weights")
    weights: str | None = _setting(None, "model", "local .pth/.safetensors file for the backbone (offline)")

    # Training
    epochs: int = _setting(10, "training", "total epochs, including the frozen ones")
    freeze_epochs: int = _setting(1, "training", "first epochs that train only the new head")
    batch_size: int = _setting(32, "training", "images per step")
    lr: float | str = _setting(2e-3, "training", "learning rate of the head (or auto: LR finder)")
    backbone_lr_factor: float = _setting(1.0, "training", "backbone learning rate = lr x this, once unfrozen")
    layer_decay: float = _setting(0.8, "training", "each backbone layer learns at this x the rate of the one above")
    weight_decay: float = _setting(0.01, "training", "AdamW weight decay")
    warmup_fraction: float = _setting(0.1, "training", "share of each phase spent warming up the learning rate")
    label_smoothing: float = _setting(0.1, "training", "softens the targets; helps with noisy labels")
    drop_path: float | str = _setting(AUTO, "training", "chance that training skips each residual block: "
                                      "auto (0.2 from 224 px up, else 0), 0 (never) or a number")
    flip: bool = _setting(True, "training", "mirror photos at random (and average with the mirror image "
                          "when predicting); --no-flip for digits, text, anything with a left and a right")
    balance: str = _setting(
        AUTO, "training", "uneven classes: auto (weighted loss above 3:1), none, weighted-loss or sampler",
        ("auto", "none", "weighted-loss", "sampler"),
    )
    seed: int = _setting(42, "training", "random seed: same seed, same split and same run")

    # Hardware
    accelerator: str = _setting(AUTO, "hardware", "where to train", ("auto", "cpu", "gpu", "cuda", "mps"))
    devices: int | str = _setting(AUTO, "hardware", "number of GPUs (or auto)")
    num_nodes: int = _setting(1, "hardware", "number of machines")
    strategy: str = _setting(AUTO, "hardware", "Lightning strategy: auto, ddp, fsdp, ...")
    precision: str = _setting(
        AUTO, "hardware", "number format", ("auto", "32", "16-mixed", "bf16-mixed")
    )
    compile: bool = _setting(False, "hardware", "torch.compile the network (pays on a GPU, on long runs)")

    # Output
    output: str = _setting("runs", "output", "folder that holds one subfolder per run")
    name: str | None = _setting(None, "output", "run folder name (default: date and time)")
    resume: str | None = _setting(None, "output", "run folder or .ckpt to continue from")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_TYPES = typing.get_type_hints(Config)
# How ``train --help`` titles the groups of settings above.
GROUP_TITLES = {"data": "data", "model": "model", "training": "training recipe",
                "hardware": "hardware (CPU, Apple GPU, NVIDIA GPUs)", "output": "output and resuming"}


def validate(cfg: Config) -> Config:
    """Check ranges that a type alone cannot express."""
    rules = [
        (cfg.epochs >= 1, "epochs must be at least 1"),
        (0 <= cfg.freeze_epochs <= cfg.epochs, "freeze_epochs must be between 0 and epochs"),
        (cfg.batch_size >= 1, "batch_size must be at least 1"),
        (32 <= cfg.image_size <= 2048, "image_size must be between 32 and 2048 pixels"),
        (0 < cfg.val_fraction < 1, "val_fraction must be between 0 and 1, e.g. 0.2"),
        (cfg.lr == AUTO or cfg.lr > 0, "lr must be a positive number or auto"),
        (cfg.backbone_lr_factor > 0, "backbone_lr_factor must be positive"),
        (0 < cfg.layer_decay <= 1, "layer_decay must be above 0 and at most 1 (1: all layers at one rate)"),
        (0 <= cfg.label_smoothing < 1, "label_smoothing must be between 0 and 1"),
        (cfg.drop_path == AUTO or 0 <= cfg.drop_path < 1, "drop_path must be auto or between 0 and 1"),
        (0 <= cfg.warmup_fraction < 1, "warmup_fraction must be between 0 and 1"),
        (cfg.num_nodes >= 1, "num_nodes must be at least 1"),
    ]
    for ok, message in rules:
        if not ok:
            raise UsageError(f"{message}.")
    if cfg.name is not None and not cfg.resume and not is_plain_name(cfg.name):  # resuming: the run's own name
        raise UsageError(f"name {cfg.name!r} must be one plain folder name, such as first-try: no / or \\, "
                         "not . or .., not starting with a dot. Choose where run folders go with --output.")
    return cfg


def is_plain_name(name: str) -> bool:
    """One folder name inside --output: train creates it, so it must not point anywhere else."""
    return bool(name.strip()) and not name.startswith(".") and not any(c in name for c in "/\\:\0")


def make_config(values: dict[str, Any], source: str = "the config") -> Config:
    """Build a validated ``Config`` from a dict of overrides (unknown keys are refused)."""
    for key in values:
        if key not in FIELDS:
            raise UsageError(f"unknown key '{key}' in {source}.{closest_key(key, FIELDS)}")
    typed = {key: coerce(key, value, _TYPES[key], FIELDS[key].metadata["choices"]) for key, value in values.items()}
    return validate(Config(**typed))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file (if any), then command-line overrides."""
    values = read_yaml(path) if path else {}
    values.update(overrides or {})
    return make_config(values, str(path or "the config"))


def save_config(cfg: Config, path: Path) -> None:
    """Write the fully resolved config so the run can be repeated with ``--config``."""
    write_atomically(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))  # whole or not at all
