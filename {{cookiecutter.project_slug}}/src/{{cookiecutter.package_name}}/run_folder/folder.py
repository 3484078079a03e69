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

Here: its paths (``RunFolder``), making a new one (``new_run``), writing a file whole or not at all
(``write_json``), and removing a run that stopped before its first checkpoint (``discard_if_unused``).
"""

from __future__ import annotations

import errno
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
