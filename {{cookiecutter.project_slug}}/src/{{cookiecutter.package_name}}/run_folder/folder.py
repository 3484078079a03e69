"""The run folder: where one ``train`` keeps everything it produces.

    runs/<name>/
      config.yaml            the fully resolved config (repeat the run with --config)
      labels.json            class names in index order
      splits.csv             the split actually used
      skipped.csv            files left out (hidden, not images, unreadable), and why
      checkpoints/best.ckpt  best validation macro F1 so far
      checkpoints/last.ckpt  end of the latest epoch (what --resume continues from)
      metrics.json           final numbers
      report.md              the run in one page, with confusion_matrix.png and mistakes/ (reporting/report.py)
      events.out.tfevents.*  TensorBoard
      .run                   marks the folder as one that train made (see ``new_run``)

``train`` only ever writes into a folder it made itself: ``--name`` is one plain folder name, and an
existing folder without the ``.run`` mark is refused, so a typo cannot turn your Pictures folder, or
``runs/`` itself, into a run folder. Each file is written whole or not at all (training/writing.py).

Here: its paths (``RunFolder``), making a new one (``new_run``), writing JSON whole or not at all
(``write_json``), and removing a run that stopped before its first checkpoint (``discard_if_unused``).
"""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.errors import UsageError, UserError, shell_quote
from {{ cookiecutter.package_name }}.training.writing import write_atomically

PROJECT = "{{ cookiecutter.package_name }}"  # the same name model/classifier.py stores in checkpoints
# What a run writes before its first checkpoint: all that is removed when it stops there (discard_if_unused).
EARLY_FILES = ("config.yaml", "labels.json", "splits.csv", "skipped.csv", "lr_finder.png", "hparams.yaml",
               "events.out.tfevents.*", ".lr_find_*.ckpt", ".*.tmp", "checkpoints/.*.tmp", ".run")


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

    def settings(self) -> dict[str, Any]:
        """The run's settings as its config.yaml holds them; {} when it cannot be read."""
        try:
            settings = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            settings = None
        return settings if isinstance(settings, dict) else {}

    def data_folder(self) -> Path:
        """The dataset folder the run was trained on, as its config.yaml says (no readable config.yaml:
        the images are looked for from here, or under --data)."""
        return Path(str(self.settings().get("data", ""))).expanduser()


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
            f"run folder {run} already holds a run; continue it with --resume {shell_quote(run.path)}, "
            "or pick another --name."
        )
    if not ours:
        raise UsageError(f"{run} already exists and train did not make it; pick a new --name "
                         "(train makes a folder of its own for each run and never writes into yours).")


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
                raise UserError("the disk is full; free some space, then continue with: "
                                f"train --resume {shell_quote(run.path)}") from None
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


def write_json(path: Path, data: Any) -> None:
    """Write JSON whole or not at all (training/writing.py): a crash or a full disk never leaves half a file."""
    write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
