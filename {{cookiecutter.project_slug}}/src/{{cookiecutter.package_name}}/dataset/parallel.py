"""Decode many image files at once, on every CPU core, with a progress bar.

``check_images`` runs ``inspect_image`` (inspection.py) on every file in worker processes;
``find_unreadable`` is the fast path ``train`` runs first, ``check-data`` the full one with hashes.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Iterable
from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.inspection import ImageCheck, inspect_image

POOL_MIN_FILES = 200  # below this, starting worker processes costs more than it saves


def cpu_count() -> int:
    """CPU cores this process may use (respects taskset/cgroups, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


def check_images(paths: Iterable[Path | str], hashes: bool = True, processes: int | None = None,
                 progress: bool = True, description: str = "Checking images") -> list[ImageCheck]:
    """Decode every file with ``inspect_image`` (one worker process per core), in the order given."""
    paths = [str(path) for path in paths]
    processes = max(1, processes or cpu_count())
    work = functools.partial(inspect_image, hashes=hashes)
    results: list[ImageCheck] = []
    with _progress_bar(description, len(paths), progress and bool(paths)) as advance:
        if processes > 1 and len(paths) >= POOL_MIN_FILES:
            chunk = max(1, min(64, len(paths) // (processes * 8)))
            with multiprocessing.get_context().Pool(processes) as pool:
                for check in pool.imap(work, paths, chunksize=chunk):
                    results.append(check)
                    advance()
        else:
            for path in paths:
                results.append(work(path))
                advance()
    return results


class _progress_bar:
    """A rich progress bar on stderr, so a report piped to a file stays clean (in a log: its final state)."""

    def __init__(self, description: str, total: int, enabled: bool):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.description, self.total, self.enabled = description, total, enabled

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self.console, transient=False)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


def find_unreadable(paths: Iterable[Path]) -> dict[Path, str]:
    """The fast path ``train`` runs first: every image decoded, no hashes. Returns path -> reason.

    Its progress bar shows only in a terminal: train's log keeps just the one-line data summary.
    """
    from rich.console import Console

    checks = check_images(paths, hashes=False, progress=Console(stderr=True).is_terminal,
                          description="Checking that every image opens")
    return {Path(c.path): f"{c.problem} - {c.reason}" for c in checks if c.problem}
