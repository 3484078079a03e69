"""Finding runs: the folder a training writes into (``open_run``: a new one, or the one ``--resume``
continues), the checkpoint ``predict`` and ``export`` use, and a run's validation images (what export
checks its bundle on).
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder, new_run
from {{ cookiecutter.package_name }}.training.processes import helpers_run_folder

WHAT_TO_PASS = "pass a run folder made by train (runs/<name>), a .ckpt file from one, or a folder made by export"


def open_run(output: str, name: str | None, resume: str | None, main: bool) -> tuple[RunFolder, Path | None]:
    """The run folder and the checkpoint to resume from (None for a new run). With several processes,
    only the main one creates a new run folder; the others are told where it is (processes.py)."""
    if resume:
        return find_resume(resume)
    if main:
        return new_run(output, name), None
    return RunFolder(helpers_run_folder(output)), None


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
    if not run.config.is_file():
        raise UserError(f"{run} has no config.yaml, so it is not a run folder of this project.")
    if not checkpoint.is_file():
        raise UserError(
            f"{run} has no checkpoints/last.ckpt to resume from (the run stopped before its first epoch ended)."
        )
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
