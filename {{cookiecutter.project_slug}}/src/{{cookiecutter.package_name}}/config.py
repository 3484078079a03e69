"""The training configuration: one object, its defaults, and strict loading.

Every setting lives in ``Config`` below. ``configs/default.yaml`` is the same settings with a
comment on each, for you to copy and edit; ``train --config FILE`` reads such a file and command-line
flags override it. A misspelt key or a wrong type stops the run with a one-line message that names
the key and what it expects, because a typo that silently falls back to a default wastes an afternoon
of training; ``validate`` holds the ranges. ``train --help`` lists the same settings as flags (cli/).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.errors import UsageError, UserError
from {{ cookiecutter.package_name }}.training.writing import write_atomically

AUTO = "auto"


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
    compile: bool = _setting(False, "hardware", "torch.compile the network (CUDA only; slower for now: BatchNorm's "
                                                      "per-epoch averages make it recompile)")

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


def resume_settings(saved_config: Path, now: dict[str, Any]) -> dict[str, Any]:
    """For --resume: a run's saved settings (its config.yaml), with those given now on top (e.g. more --epochs)."""
    saved = read_yaml(saved_config)
    if not {"data", "backbone"} <= saved.keys():  # e.g. emptied by a crash of an older version
        raise UserError(f"{saved_config} does not hold the run's settings (it is empty or cut short), so the run "
                        "cannot be continued as it was; start a new run with train --config FILE.")
    saved.update(now)
    run = saved_config.parent
    saved.update(resume=str(run), output=str(run.parent), name=run.name)
    return saved


# ---- reading text strictly: a YAML file, or a value typed on the command line ------------------------
def expected(kind: Any, choices: tuple[str, ...] = ()) -> str:
    """How to describe the type a setting expects, in words."""
    if choices:
        return "one of " + ", ".join(choices)
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "text",
        int | str: "auto or a whole number",
        float | str: "auto or a number",
        str | None: "text or null",
    }[kind]


def coerce(key: str, value: Any, kind: Any, choices: tuple[str, ...] = ()) -> Any:
    """Convert ``value`` (from YAML or the command line) to ``kind``, the type of ``key``, or fail clearly."""
    text = str(value).strip().lower() if value is not None else None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if text in ("true", "yes", "1"):
                return True
            if text in ("false", "no", "0"):
                return False
            raise ValueError
        if kind is str and choices:
            if text not in choices:
                raise ValueError
            return text
        if kind is str:
            if value is None or isinstance(value, bool):
                raise ValueError
            return str(value)
        if kind == str | None:
            return None if value is None or text in ("null", "none", "") else str(value)
        if text == AUTO and kind in (int | str, float | str):
            return AUTO
        if kind in (int, int | str):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value))
        if kind in (float, float | str):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
    except (TypeError, ValueError):
        pass
    raise UsageError(f"config key '{key}' expects {expected(kind, choices)}, got {value!r}.")


def closest_key(name: str, keys: Iterable[str]) -> str:
    """' Did you mean X?' for a misspelt key, or '' when nothing is close."""
    match = difflib.get_close_matches(name.replace("-", "_"), list(keys), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with one-line errors for the usual mistakes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; check the path or copy configs/default.yaml.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path} is not valid YAML{where}; fix it and try again.") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must be a list of 'key: value' lines.")
    return values
