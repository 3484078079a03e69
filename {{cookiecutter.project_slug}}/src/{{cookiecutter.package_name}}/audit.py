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

import functools
import json
import multiprocessing
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.device import cpu_count
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.folders import (
    HIDDEN,
    IMBALANCE_LIMIT,
    NOT_AN_IMAGE,
    OUTSIDE,
    SPLIT_NAMES,
    FolderScan,
    build_splits,
    imbalance_ratio,
    relative_to_root,
    scan_folder,
)
from {{ cookiecutter.package_name }}.images import TOO_LARGE, ImageCheck, inspect_image

# Edit here: the thresholds behind the warnings.
MIN_SIDE = 32  # images smaller than this (pixels, either side) carry little for the model to learn
MIN_IMAGES = 10  # a class with fewer training images than this is hard to learn and to measure
# Two files are the same picture when their perceptual hashes differ in at most NEAR_BITS of 64 bits
# and their 8x8 colour thumbnails by at most NEAR_PIXELS grey levels (mean, 0..255). Calibrated so that
# a photo halved, doubled, cropped by 2% or re-saved as JPEG (quality 70) is caught, while none of the
# 64,620 pairs of the look-alike drawings in tests/conftest.py is (similar is not the same).
NEAR_BITS = 5
NEAR_PIXELS = 4.0
SHOW = 5  # files listed per problem without --all

POOL_MIN_FILES = 200  # below this, starting worker processes costs more than it saves


# ---- decoding every file, in parallel ----------------------------------------------------------------
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


# ---- the report --------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One kind of problem and the files it concerns."""

    kind: str  # a stable name, e.g. "truncated" or "exact duplicates across classes"
    severity: str  # "error" (training impossible), "warning" (worth fixing) or "info" (worth knowing)
    message: str  # one sentence for people
    paths: list[str] = field(default_factory=list)  # relative to the data folder
    groups: list[list[str]] = field(default_factory=list)  # duplicates: files that are the same picture
    reasons: dict[str, str] = field(default_factory=dict)  # unreadable files: the decoder's words


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
        build_splits(scan, val_fraction, seed, unreadable)
        trainable, verdict = True, "train can use this folder"
    except UserError as err:
        trainable, verdict = False, str(err)

    where = _locations(scan)
    good = [c for c in checks if not c.problem]
    problems = _file_problems(scan, by_path)
    classes = _class_table(scan, by_path)
    train_counts = {name: row["train"] for name, row in classes.items()}
    problems += _class_problems(scan, classes)
    problems += _duplicate_problems(good, where, scan.root, val_is_made="val" not in scan.split_dirs)
    balance = _balance(train_counts)
    if balance["imbalanced"]:
        problems.append(Problem(
            "class imbalance", "warning",
            f"class imbalance: {balance['largest']} has {balance['ratio']:.1f}x the training images of "
            f"{balance['smallest']} (above {IMBALANCE_LIMIT:g}); train --balance auto (the default) "
            "weights the loss to make up for it, or add photos to the small classes.",
        ))
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
        balance=balance,
        problems=problems,
        trainable=trainable,
        verdict=verdict,
        seconds=round(time.perf_counter() - started, 2),
        processes=processes if len(checks) >= POOL_MIN_FILES else 1,
    )


def _count(number: int, singular: str, plural: str) -> str:
    """'1 image file', '2 image files'."""
    return f"{number} {singular if number == 1 else plural}"


def _locations(scan: FolderScan) -> dict[str, tuple[str, str]]:
    """Image path -> (split, class)."""
    return {str(path): (split, name) for split, by_class in scan.images.items()
            for name, paths in by_class.items() for path in paths}


def _file_problems(scan: FolderScan, by_path: dict[Path, ImageCheck]) -> list[Problem]:
    """Files that cannot be used, or barely: unreadable, not images, hidden, tiny."""
    root = scan.root
    problems = []
    for kind, *what in (("corrupt", "corrupt image file (it fails to decode)",
                         "corrupt image files (they fail to decode)"),
                        ("truncated", "truncated image file (cut off, e.g. a half-finished download)",
                         "truncated image files (cut off, e.g. half-finished downloads)"),
                        ("not an image", "file with an image extension that is not an image",
                         "files with an image extension that are not images")):
        bad = {relative_to_root(p, root): c.reason for p, c in by_path.items() if c.problem == kind}
        if bad:
            problems.append(Problem(kind, "warning", f"Unreadable: {_count(len(bad), *what)}; train leaves "
                                    f"{'it' if len(bad) == 1 else 'them'} out.", sorted(bad), reasons=bad))
    # Valid pictures, only bigger than Pillow will decode: not broken, and the fix is different.
    huge = {relative_to_root(p, root): c.reason for p, c in by_path.items() if c.problem == TOO_LARGE}
    if huge:
        one = len(huge) == 1
        problems.append(Problem(
            TOO_LARGE, "warning",
            f"Too large: {_count(len(huge), 'image', 'images')} bigger than Pillow decodes safely (it guards "
            f"against decompression bombs); train leaves {'it' if one else 'them'} out. To include "
            f"{'it' if one else 'them'}, downscale {'it' if one else 'them'} (for example to 4000 pixels on the long "
            "side).", sorted(huge), reasons=huge,
        ))
    for reason, kind, severity, what in (
        (NOT_AN_IMAGE, "non-image files", "info", ("file that is not an image (by its extension)",
                                                   "files that are not images (by their extension)")),
        (HIDDEN, "hidden files", "info", ("hidden or system file (.DS_Store, Thumbs.db, ...)",
                                          "hidden or system files (.DS_Store, Thumbs.db, ...)")),
        (OUTSIDE, "not in a class folder", "info", ("file outside any class folder", "files outside any class folder")),
    ):
        paths = sorted(relative_to_root(p, root) for p, why in scan.skipped.items() if why == reason)
        heic = [path for path in paths if Path(path).suffix.lower() in (".heic", ".heif")]
        if heic:  # iPhone photos: the most common "not an image" that really is one
            problems.append(Problem(
                "HEIC photos", "warning",
                f"Skipped: {_count(len(heic), 'HEIC photo', 'HEIC photos')} (the iPhone format), which Pillow "
                "cannot read; export them as JPEG (or pip install pillow-heif and convert them).", heic,
            ))
            paths = [path for path in paths if path not in heic]
        if paths:
            problems.append(Problem(kind, severity, f"Skipped: {_count(len(paths), *what)}.", paths))
    tiny = sorted(relative_to_root(p, root) for p, c in by_path.items()
                  if not c.problem and min(c.width, c.height) < MIN_SIDE)
    if tiny:
        problems.append(Problem(
            "tiny images", "warning",
            f"Tiny: {_count(len(tiny), 'image', 'images')} smaller than {MIN_SIDE} px on a side, "
            "too small to learn much from.", tiny,
        ))
    return problems


def _class_table(scan: FolderScan, by_path: dict[Path, ImageCheck]) -> dict[str, dict[str, int]]:
    """Readable images per class and split, plus the unreadable ones."""
    names = sorted({name for by_class in scan.images.values() for name in by_class})
    table = {name: {"train": 0, "val": 0, "test": 0, "unreadable": 0} for name in names}
    for split, by_class in scan.images.items():
        for name, paths in by_class.items():
            for path in paths:
                table[name]["unreadable" if by_path[path].problem else split] += 1
    return table


def _class_problems(scan: FolderScan, classes: dict[str, dict[str, int]]) -> list[Problem]:
    """Empty classes, small classes, classes missing from val/ or test/."""
    problems = []
    train_dir = scan.split_dirs["train"]
    empty = [name for name in scan.images["train"] if classes[name]["train"] == 0]
    if empty:
        problems.append(Problem(
            "empty classes", "warning",
            f"Empty: {_count(len(empty), 'class folder', 'class folders')} with no readable training image "
            f"({', '.join(empty)}); train skips them.",
            [relative_to_root(train_dir / name, scan.root) for name in empty],
        ))
    few = [name for name in scan.images["train"] if 0 < classes[name]["train"] < MIN_IMAGES]
    if few:
        problems.append(Problem(
            "small classes", "warning",
            f"Small: {len(few)} class(es) with fewer than {MIN_IMAGES} training images: "
            + ", ".join(f"{name} ({classes[name]['train']})" for name in few) + "; add photos if you can.",
            [relative_to_root(train_dir / name, scan.root) for name in few],
        ))
    for split in ("val", "test"):
        if split in scan.split_dirs:
            missing = [name for name in scan.images["train"] if classes[name]["train"] and not classes[name][split]]
            if missing:
                problems.append(Problem(
                    f"classes missing from {split}", "warning",
                    f"{split}/ has no images of {', '.join(missing)}, so they cannot be measured there.",
                ))
    return problems


def _balance(train_counts: dict[str, int]) -> dict[str, Any]:
    """Biggest and smallest class in train, and whether the ratio is worth handling."""
    counts = {name: n for name, n in train_counts.items() if n > 0}
    if not counts:
        return {"ratio": 1.0, "largest": None, "smallest": None, "imbalanced": False}
    largest, smallest = max(counts, key=counts.get), min(counts, key=counts.get)
    ratio = imbalance_ratio(list(counts.values()))
    return {"ratio": round(ratio, 2), "largest": largest, "smallest": smallest,
            "imbalanced": ratio > IMBALANCE_LIMIT}


# ---- duplicates ----------------------------------------------------------------------------------
def _duplicate_problems(good: list[ImageCheck], where: dict[str, tuple[str, str]], root: Path,
                        val_is_made: bool = False) -> list[Problem]:
    """Exact copies (same bytes) and near copies (same picture resized or re-saved), by where they sit."""
    problems = []
    exact = defaultdict(list)
    for check in good:
        exact[check.sha1].append(check.path)
    exact_groups = [sorted(paths) for paths in exact.values() if len(paths) > 1]
    problems += _classify_groups(exact_groups, where, root, "exact duplicates", "identical files", val_is_made)

    # Near copies: compare one file per distinct content, then drop groups that are all one content.
    unique = [paths[0] for paths in exact.values()]
    first = {c.path: c for c in good}
    near_groups = []
    for group in near_duplicate_groups([first[p] for p in unique]):
        members = sorted(p for representative in group for p in exact[first[representative].sha1])
        near_groups.append(members)
    problems += _classify_groups(near_groups, where, root, "near duplicates",
                                 "near-identical pictures (resized, re-saved or lightly edited copies)", val_is_made)
    return problems


def _classify_groups(groups: list[list[str]], where: dict[str, tuple[str, str]], root: Path,
                     name: str, what: str, val_is_made: bool) -> list[Problem]:
    """Split duplicate groups by what they mean: in one class, in several classes, in several splits."""
    leak = "; the val split that train makes may put one copy in val" if val_is_made else ""
    kinds = {
        "within a class": ([], "info", f"in the same class (they count twice{leak})"),
        "across classes": ([], "warning", "in different classes: which label is right? (label conflict)"),
        "across splits": ([], "warning", "in both train and val/test: the score would be measured on "
                                         "photos the model trained on (leakage)"),
    }
    for group in groups:
        splits = {where[p][0] for p in group}
        labels = {where[p][1] for p in group}
        same_place = len(group) > len({where[p] for p in group})
        if len(labels) > 1:
            kinds["across classes"][0].append(group)
        if len(splits) > 1:
            kinds["across splits"][0].append(group)
        if same_place or (len(labels) == 1 and len(splits) == 1):
            kinds["within a class"][0].append(group)
    problems = []
    for kind, (found, severity, meaning) in kinds.items():
        if found:
            relative = [[relative_to_root(p, root) for p in group] for group in found]
            problems.append(Problem(
                f"{name} {kind}", severity, f"Duplicates: {len(found)} group(s) of {what} {meaning}.",
                [p for group in relative for p in group], groups=relative,
            ))
    return problems


def _popcount(values: np.ndarray) -> np.ndarray:
    """Number of 1 bits in each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[values.view(np.uint8)].reshape(*values.shape, 8).sum(-1)


def near_duplicate_groups(checks: list[ImageCheck], max_bits: int = NEAR_BITS,
                          max_pixels: float = NEAR_PIXELS) -> list[list[str]]:
    """Groups of paths whose pictures look the same: close hashes, confirmed by close thumbnails.

    Every pair is compared (n^2/2 64-bit comparisons, vectorised: about a second for 20,000 images).
    """
    n = len(checks)
    if n < 2:
        return []
    hashes = np.array([c.dhash for c in checks], dtype=np.uint64)
    thumbnails = np.frombuffer(b"".join(c.thumbnail for c in checks), dtype=np.uint8).reshape(n, -1).astype(np.int16)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = 256
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        distance = _popcount(hashes[start:stop, None] ^ hashes[None, start:])
        i, j = np.nonzero(distance <= max_bits)
        i, j = i + start, j + start
        keep = j > i
        i, j = i[keep], j[keep]
        for begin in range(0, len(i), 100_000):  # bounded memory when many images look alike
            a, b = i[begin:begin + 100_000], j[begin:begin + 100_000]
            close = np.abs(thumbnails[a] - thumbnails[b]).mean(axis=1) <= max_pixels
            for x, y in zip(a[close].tolist(), b[close].tolist(), strict=True):
                parent[find(x)] = find(y)
    groups = defaultdict(list)
    for index in range(n):
        groups[find(index)].append(checks[index].path)
    return [sorted(group) for group in groups.values() if len(group) > 1]


# ---- printing ------------------------------------------------------------------------------------
def print_report(report: Report, show_all: bool = False) -> None:
    """The report for people: the class table, the numbers, then each problem with its files."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, highlight=False)
    console.print(f"Dataset: [bold]{report.root}[/]  ({report.layout})")
    table = Table(show_footer=True)
    columns = ["train", "val", "test", "unreadable"]
    totals = {column: sum(row[column] for row in report.classes.values()) for column in columns}
    table.add_column("class", footer="total")
    for column in columns:
        table.add_column(column, justify="right", footer=str(totals[column]))
    for name, row in report.classes.items():
        cells = [str(row[column]) for column in columns]
        style = "yellow" if row["train"] == 0 else None
        table.add_row(name, *cells, style=style)
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
        console.print(f"[{colour}]{mark}[/] {problem.message}")
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
