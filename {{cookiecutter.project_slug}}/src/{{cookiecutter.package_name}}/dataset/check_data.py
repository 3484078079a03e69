"""``check-data``: look at every file of a dataset before training on it, and say what is wrong.

    {{ cookiecutter.project_slug }} check-data data/my-pets              the report, for people
    {{ cookiecutter.project_slug }} check-data data/my-pets --all        every file of every problem
    {{ cookiecutter.project_slug }} check-data data/my-pets --json report.json

Every image is decoded completely (not just its header), in parallel on all CPU cores, so a
half-downloaded JPEG or a text file renamed .jpg is found here instead of crashing training half
way through an epoch. The same decoding is the fast path ``train`` runs before it starts.

It finds: unreadable, truncated and non-image files, images too large to decode, hidden files,
tiny images, classes with few or no images, the same photo twice (identical files, or the same
picture resized or re-saved) in a class, in two classes (which label is right?) or in two splits
(the model is tested on what it trained on), and class imbalance. Exit code 0 means ``train`` can use the folder.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.dataset.balance import Balance, class_balance
from {{ cookiecutter.package_name }}.dataset.duplicates import duplicate_problems
from {{ cookiecutter.package_name }}.dataset.folders import SPLIT_NAMES, FolderScan, build_splits, scan_folder
from {{ cookiecutter.package_name }}.dataset.parallel import POOL_MIN_FILES, check_images, cpu_count
from {{ cookiecutter.package_name }}.dataset.problems import Problem, class_problems, class_table, file_problems, imbalance_problems
from {{ cookiecutter.package_name }}.errors import UserError

SHOW = 5  # files listed per problem without --all


@dataclass
class Report:
    """Everything ``check-data`` found; ``to_dict`` is what ``--json`` writes."""

    root: str
    layout: str  # which split folders exist, in words
    classes: dict[str, dict[str, int]]  # class -> {"train": n, "val": n, "test": n, "unreadable": n}
    images: int  # readable images in all splits
    files: int  # every file looked at, hidden and non-image ones included
    sizes: dict[str, Any]  # smallest, largest and median width x height
    modes: dict[str, int]  # "grayscale": 3, "alpha": 1, ...
    balance: dict[str, Any]  # ratio of the biggest to the smallest class in train, and whether it is a concern
    problems: list[Problem]
    trainable: bool
    verdict: str  # one line: why training can or cannot go ahead
    seconds: float = 0.0
    processes: int = 1

    def problem(self, kind: str) -> Problem | None:
        return next((p for p in self.problems if p.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit(data_dir: str | Path, processes: int | None = None, progress: bool = True,
          val_fraction: float = 0.2, seed: int = 42) -> Report:
    """Check every file of a dataset folder. Raises ``UserError`` only when there is no dataset to check."""
    started = time.perf_counter()
    scan = scan_folder(data_dir)
    processes = max(1, processes or cpu_count())
    checks = check_images(scan.all_images(), hashes=True, processes=processes, progress=progress)
    by_path = {Path(c.path): c for c in checks}
    unreadable = {path: c.reason for path, c in by_path.items() if c.problem}
    try:
        # The split train would make: its training images are the counts the balance rule looks at.
        splits = build_splits(scan, val_fraction, seed, unreadable)
        trainable, verdict = True, "train can use this folder"
        balance = class_balance(splits.classes, splits.train_counts())
    except UserError as err:
        trainable, verdict = False, str(err)
        balance = Balance(1.0, None, None, False)

    where = locations(scan)
    good = [c for c in checks if not c.problem]
    problems = file_problems(scan, by_path)
    classes = class_table(scan, by_path)
    problems += class_problems(scan, classes)
    problems += duplicate_problems(good, where, scan.root, val_is_made="val" not in scan.split_dirs)
    problems += imbalance_problems(balance)
    if not trainable:
        problems.insert(0, Problem("cannot train", "error", verdict))

    widths, heights = [c.width for c in good], [c.height for c in good]
    areas = sorted(good, key=lambda c: c.width * c.height)
    sizes = {}
    if good:
        sizes = {
            "smallest": f"{areas[0].width}x{areas[0].height}",
            "largest": f"{areas[-1].width}x{areas[-1].height}",
            "median": f"{int(statistics.median(widths))}x{int(statistics.median(heights))}",
        }
    splits = [s for s in SPLIT_NAMES if s in scan.split_dirs and scan.split_dirs[s] != scan.root]
    layout = (" + ".join(f"{s}/" for s in splits) if splits else "class folders directly in the folder")
    if "val" not in scan.split_dirs:
        layout += " (no val/: train holds out part of each class for validation)"
    return Report(
        root=str(scan.root),
        layout=layout,
        classes=classes,
        images=len(good),
        files=len(checks) + len(scan.skipped),
        sizes=sizes,
        modes=dict(Counter(note for c in good for note in c.notes).most_common()),
        balance={**asdict(balance), "ratio": round(balance.ratio, 2)},
        problems=problems,
        trainable=trainable,
        verdict=verdict,
        seconds=round(time.perf_counter() - started, 2),
        processes=processes if len(checks) >= POOL_MIN_FILES else 1,
    )


def locations(scan: FolderScan) -> dict[str, tuple[str, str]]:
    """Image path -> (split, class)."""
    return {str(path): (split, name) for split, by_class in scan.images.items()
            for name, paths in by_class.items() for path in paths}


# ---- printing and saving ---------------------------------------------------------------------------
def print_report(report: Report, show_all: bool = False) -> None:
    """The report for people: the class table, the numbers, then each problem with its files."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(soft_wrap=True, highlight=False)
    console.print(f"Dataset: [bold]{escape(str(report.root))}[/]  ({report.layout})")
    table = Table(show_footer=True)
    columns = ["train", "val", "test", "unreadable"]
    totals = {column: sum(row[column] for row in report.classes.values()) for column in columns}
    table.add_column("class", footer="total")
    for column in columns:
        table.add_column(column, justify="right", footer=str(totals[column]))
    for name, row in report.classes.items():
        cells = [str(row[column]) for column in columns]
        style = "yellow" if row["train"] == 0 else None
        table.add_row(escape(name), *cells, style=style)
    console.print(table)

    sizes = report.sizes
    if sizes:
        console.print(f"Images: {report.images} readable; sizes from {sizes['smallest']} to {sizes['largest']} "
                      f"pixels (median {sizes['median']}).")
    if report.modes:
        modes = ", ".join(f"{count} {mode}" for mode, count in report.modes.items())
        console.print(f"Worth knowing (they load fine, converted to upright RGB): {modes}.")
    balance = report.balance
    if balance["largest"] and not balance["imbalanced"]:
        console.print(f"Class sizes: balanced enough (largest/smallest = {balance['ratio']:.1f}).")

    styles = {"error": ("red", "x"), "warning": ("yellow", "!"), "info": ("blue", "i")}
    if report.problems:
        console.print("\n[bold]Problems[/]")
    for problem in report.problems:
        colour, mark = styles[problem.severity]
        console.print(f"[{colour}]{mark}[/] {escape(problem.message)}")
        if problem.groups:
            shown = problem.groups if show_all else problem.groups[:SHOW]
            for group in shown:
                console.print("    " + "  =  ".join(group), markup=False)
            hidden = len(problem.groups) - len(shown)
        else:
            shown = problem.paths if show_all else problem.paths[:SHOW]
            for path in shown:
                reason = problem.reasons.get(path)
                console.print(f"    {path}" + (f"   ({reason})" if reason else ""), markup=False)
            hidden = len(problem.paths) - len(shown)
        if hidden > 0:
            console.print(f"    ... and {hidden} more (--all lists every one)")

    warnings = sum(p.severity == "warning" for p in report.problems)
    console.print(f"\nChecked {report.files} files in {report.seconds:.1f} s "
                  f"({report.processes} process{'es' if report.processes > 1 else ''}).")
    if report.trainable:
        extra = f", with {warnings} warning(s) above" if warnings else ""
        console.print(f"[green]OK:[/] train can use this folder{extra}.")


def write_report_json(report: Report, path: str | Path) -> None:
    """``--json FILE``: the same report as data."""
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot write {target} ({err.strerror}); choose another --json path.") from None


def check_data(data_dir: str, json_path: str | None = None, show_all: bool = False,
               processes: int | None = None) -> Report:
    """What ``check-data`` does: audit, print, save; raise ``UserError`` (exit 1) if training is impossible."""
    try:
        report = audit(data_dir, processes=processes)
    except UserError as err:  # nothing to audit (missing path, no class folders): still leave the JSON
        if json_path:
            problems = [Problem("cannot train", "error", str(err))]
            write_report_json(Report(str(data_dir), "", {}, 0, 0, {}, {}, {}, problems, False, str(err)), json_path)
        raise
    print_report(report, show_all)
    if json_path:
        write_report_json(report, json_path)
    if not report.trainable:
        raise UserError(report.verdict)
    return report
