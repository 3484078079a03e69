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
      .run                   marks the folder as one that train made (see ``new_run``)

``train`` only ever writes into a folder it made itself: ``--name`` is one plain folder name, and an
existing folder without the ``.run`` mark is refused, so a typo cannot turn your Pictures folder, or
``runs/`` itself, into a run folder. Each file is written whole or not at all (writing.py).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.errors import UsageError, UserError
from {{ cookiecutter.package_name }}.training.processes import helpers_run_folder
from {{ cookiecutter.package_name }}.training.settings import read_yaml
from {{ cookiecutter.package_name }}.training.writing import write_atomically

PROJECT = "{{ cookiecutter.package_name }}"
# What a run writes before its first checkpoint: all that is removed when it stops there (discard_if_unused).
EARLY_FILES = ("config.yaml", "labels.json", "splits.csv", "skipped.csv", "lr_finder.png", "hparams.yaml",
               "events.out.tfevents.*", ".lr_find_*.ckpt", ".*.tmp", "checkpoints/.*.tmp", ".run")

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
        self.marker = path / ".run"  # written first, when train creates the folder

    def __str__(self) -> str:
        return str(self.path)

    def data_folder(self) -> Path:
        """The dataset folder the run was trained on, as its config.yaml says."""
        return Path(str(read_yaml(self.config).get("data", ""))).expanduser()


def new_run(output: str, name: str | None = None) -> RunFolder:
    """Create ``output/name`` for a fresh run (name: the date and time), marked as made by train.

    An existing folder is used only if it is an earlier run of this project that stopped before its
    first checkpoint; anything else there (a finished run, a folder of yours) is refused, never touched.
    """
    name = name or datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run = RunFolder(Path(output).expanduser() / name)
    try:
        run.path.parent.mkdir(parents=True, exist_ok=True)
        created = not run.path.exists()
        if created:
            run.path.mkdir()
    except OSError as err:
        raise UserError(f"cannot create run folder {run} ({err.strerror}); choose another --output.") from None
    if not created:
        check_unfinished(run)
    else:
        try:
            write_atomically(run.marker, json.dumps({"made_by": f"{PROJECT} train"}) + "\n")
        except BaseException:
            run.path.rmdir()
            raise
    run.checkpoints.mkdir(exist_ok=True)
    return run


def check_unfinished(run: RunFolder) -> None:
    """An existing folder as a new run: refused (exit 2) unless this project made it and it has no checkpoint."""
    try:
        ours = json.loads(run.marker.read_text(encoding="utf-8")).get("made_by") == f"{PROJECT} train"
    except (OSError, ValueError, AttributeError):
        ours = False
    if run.last.is_file() and (ours or run.config.is_file()):  # also a run made before the .run mark
        raise UsageError(
            f"run folder {run} already holds a run; continue it with --resume {run}, or pick another --name."
        )
    if not ours:
        raise UsageError(f"{run} already exists and train did not make it; pick a new --name "
                         "(train makes a folder of its own for each run and never writes into yours).")


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
    """If a new run stops before its first checkpoint, remove what it wrote: an empty run only confuses.

    Only the files a run writes before its first checkpoint are removed, then the folder if nothing
    else is left in it: a file you put there stays, and so does the folder around it.
    A full disk is reported here, where it is known whether the run folder is still there to resume.
    """
    try:
        yield
    except BaseException as err:
        kept = not fresh or run.last.exists()
        if not kept:
            remove_early_files(run)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            if kept:
                raise UserError(f"the disk is full; free some space, then continue with: train --resume {run}"
                                ) from None
            raise UserError("the disk is full before the first checkpoint, so nothing of this run was kept; "
                            "free some space and run the same train command again.") from None
        raise


def remove_early_files(run: RunFolder) -> None:
    """Remove the files of ``EARLY_FILES`` from the run folder, then the folders if they are empty."""
    for pattern in EARLY_FILES:
        for path in run.path.glob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
    for folder in (run.checkpoints, run.path):
        with contextlib.suppress(OSError):  # not empty: what is left is not ours
            folder.rmdir()


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


def resume_settings(run: RunFolder, now: dict[str, Any]) -> dict[str, Any]:
    """For --resume: the run's saved settings (config.yaml), with those given now on top (e.g. more --epochs)."""
    saved = read_yaml(run.config)
    if not {"data", "backbone"} <= saved.keys():  # e.g. emptied by a crash of an older version
        raise UserError(f"{run.config} does not hold the run's settings (it is empty or cut short), so the run "
                        "cannot be continued as it was; start a new run with train --config FILE.")
    saved.update(now)
    saved.update(resume=str(run.path), output=str(run.path.parent), name=run.path.name)
    return saved


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
    """Write JSON whole or not at all (writing.py): a crash or a full disk never leaves half a file behind."""
    write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
