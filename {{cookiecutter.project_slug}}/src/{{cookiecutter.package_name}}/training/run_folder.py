"""The run folder: where one ``train`` keeps everything it produces.

    runs/<name>/
      config.yaml            the fully resolved config (repeat the run with --config)
      labels.json            class names in index order
      splits.csv             the split actually used
      skipped.csv            files left out (hidden, not images, unreadable), and why
      checkpoints/best.ckpt  best validation macro F1 so far
      checkpoints/last.ckpt  end of the latest epoch (what --resume continues from)
      metrics.json           final numbers
      report.md              the run in one page, with confusion_matrix.png and mistakes/ (see report.py)
      events.out.tfevents.*  TensorBoard
"""

from __future__ import annotations

import csv
import errno
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.training.processes import helpers_run_folder

WHAT_TO_PASS = "pass a run folder made by train (runs/<name>), a .ckpt file from one, or a folder made by export"


class RunFolder:
    """Paths inside one run folder."""

    def __init__(self, path: Path):
        self.path = path
        self.config = path / "config.yaml"
        self.labels = path / "labels.json"
        self.splits = path / "splits.csv"
        self.skipped = path / "skipped.csv"
        self.checkpoints = path / "checkpoints"
        self.best = self.checkpoints / "best.ckpt"
        self.last = self.checkpoints / "last.ckpt"
        self.metrics = path / "metrics.json"

    def __str__(self) -> str:
        return str(self.path)

    def data_folder(self) -> Path:
        """The dataset folder the run was trained on, as its config.yaml says."""
        try:
            settings = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            settings = None  # no readable config.yaml: the images are looked for from here (or --data)
        return Path(str((settings if isinstance(settings, dict) else {}).get("data", ""))).expanduser()


def new_run(output: str, name: str | None = None) -> RunFolder:
    """Create ``output/name`` for a fresh run (name: the date and time); refuse to overwrite an earlier one."""
    name = name or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run = RunFolder(Path(output).expanduser() / name)
    if run.last.exists():
        raise UserError(
            f"run folder {run} already holds a run; continue it with --resume {run}, or pick another --name."
        )
    try:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create run folder {run} ({err.strerror}); choose another --output.") from None
    return run


def open_run(output: str, name: str | None, resume: str | None, main: bool) -> tuple[RunFolder, Path | None]:
    """The run folder and the checkpoint to resume from (None for a new run). With several processes,
    only the main one creates a new run folder; the others are told where it is (processes.py)."""
    if resume:
        return find_resume(resume)
    if main:
        return new_run(output, name), None
    return RunFolder(helpers_run_folder(output)), None


@contextmanager
def discard_if_unused(run: RunFolder, fresh: bool) -> Iterator[None]:
    """If a new run stops before its first checkpoint, remove its folder: an empty run only confuses.

    A full disk is reported here, where it is known whether the run folder is still there to resume.
    """
    try:
        yield
    except BaseException as err:
        kept = not fresh or run.last.exists()
        if not kept:
            shutil.rmtree(run.path, ignore_errors=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            if kept:
                raise UserError(f"the disk is full; free some space, then continue with: train --resume {run}"
                                ) from None
            raise UserError("the disk is full before the first checkpoint, so nothing of this run was kept; "
                            "free some space and run the same train command again.") from None
        raise


def find_resume(target: str) -> tuple[RunFolder, Path]:
    """``--resume`` accepts a run folder or a checkpoint inside one; returns the run and the checkpoint."""
    path = Path(target).expanduser()
    if path.is_dir():
        run = RunFolder(path)
        checkpoint = run.last
    elif path.suffix == ".ckpt" and path.is_file():
        checkpoint = path
        run = RunFolder(path.parent.parent)
    else:
        raise UserError(f"--resume {target}: no such run folder or .ckpt file; pass e.g. --resume runs/<name>.")
    if not checkpoint.is_file():
        raise UserError(
            f"{run} has no checkpoints/last.ckpt to resume from (the run stopped before its first epoch ended)."
        )
    if not run.config.is_file():
        raise UserError(f"{run} has no config.yaml, so it is not a run folder of this project.")
    return run, checkpoint


def find_checkpoint(path: Path) -> tuple[Path, RunFolder | None]:
    """The checkpoint a path means for predict and export: a run folder's best.ckpt (last.ckpt until
    there is one), or a .ckpt file; with the run folder it belongs to, if any."""
    if path.is_dir():
        run = RunFolder(path)
        checkpoint = run.best if run.best.is_file() else run.last
        if not checkpoint.is_file():
            raise UserError(f"{path} has no checkpoints/best.ckpt, so it is not a finished run; {WHAT_TO_PASS}.")
        return checkpoint, run
    if path.is_file() and path.suffix == ".ckpt":
        parent = RunFolder(path.parent.parent)  # runs/<name>/checkpoints/best.ckpt -> runs/<name>
        return path, parent if parent.config.is_file() else None
    if path.is_file():
        raise UserError(f"{path} is not a .ckpt file; {WHAT_TO_PASS}.")
    raise UserError(f"{path} does not exist; {WHAT_TO_PASS}.")


def check_same_classes(run: RunFolder, classes: list[str]) -> None:
    """A resumed run must see the same classes, or its head would mean something else."""
    if run.labels.is_file():
        saved = json.loads(run.labels.read_text(encoding="utf-8"))
        if saved != classes:
            raise UserError(
                f"the data now has classes {classes} but {run} was trained on {saved}; "
                "start a new run instead of --resume."
            )


def validation_images(run: RunFolder, data: str | None = None, per_class: int | None = None) -> list[Path]:
    """The run's validation images (splits.csv) that are still there, under ``data`` or the run's data
    folder: one of each class in turn, so a short list still shows every class; ``per_class`` at most."""
    if not run.splits.is_file():
        return []
    root = Path(data).expanduser() if data else run.data_folder()
    by_class: dict[str, list[Path]] = {}
    with open(run.splits, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["split"] == "val":
                by_class.setdefault(row["class"], []).append(root / row["path"])
    found = [list(itertools.islice((p for p in paths if p.is_file()), per_class)) for paths in by_class.values()]
    return [paths[i] for i in range(max(map(len, found), default=0)) for paths in found if i < len(paths)]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash or a full disk never leaves half a file behind."""
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:
            raise  # a full disk: train (discard_if_unused) or the command line says what is left to do
        raise UserError(f"cannot write {path} ({err.strerror}); check that you may write to {path.parent}.") from None
