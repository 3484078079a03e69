"""check-data's rules: what counts as a problem in a dataset folder, how bad it is, and its sentence.

Each rule turns what the scan (folders.py) and the decoding (inspection.py) found into ``Problem``s:
unreadable, too large, hidden, non-image and tiny files; empty, small and missing classes; uneven classes.
Duplicates have their own file (duplicates.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.balance import IMBALANCE_LIMIT, Balance
from {{ cookiecutter.package_name }}.dataset.folders import HIDDEN, NOT_AN_IMAGE, OUTSIDE, FolderScan, relative_to_root
from {{ cookiecutter.package_name }}.dataset.inspection import TOO_LARGE, ImageCheck

# Edit here: the thresholds behind the warnings.
MIN_SIDE = 32  # images smaller than this (pixels, either side) carry little for the model to learn
MIN_IMAGES = 10  # a class with fewer training images than this is hard to learn and to measure


@dataclass
class Problem:
    """One kind of problem and the files it concerns."""

    kind: str  # a stable name, e.g. "truncated" or "exact duplicates across classes"
    severity: str  # "error" (training impossible), "warning" (worth fixing) or "info" (worth knowing)
    message: str  # one sentence for people
    paths: list[str] = field(default_factory=list)  # relative to the data folder
    groups: list[list[str]] = field(default_factory=list)  # duplicates: files that are the same picture
    reasons: dict[str, str] = field(default_factory=dict)  # unreadable files: the decoder's words


def plural(number: int, one: str, many: str) -> str:
    """'1 image file', '2 image files'."""
    return f"{number} {one if number == 1 else many}"


def file_problems(scan: FolderScan, by_path: dict[Path, ImageCheck]) -> list[Problem]:
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
            problems.append(Problem(kind, "warning", f"Unreadable: {plural(len(bad), *what)}; train leaves "
                                    f"{'it' if len(bad) == 1 else 'them'} out.", sorted(bad), reasons=bad))
    # Valid pictures, only bigger than Pillow will decode: not broken, and the fix is different.
    huge = {relative_to_root(p, root): c.reason for p, c in by_path.items() if c.problem == TOO_LARGE}
    if huge:
        one = len(huge) == 1
        problems.append(Problem(
            TOO_LARGE, "warning",
            f"Too large: {plural(len(huge), 'image', 'images')} bigger than Pillow decodes safely (it guards "
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
        if paths:
            problems.append(Problem(kind, severity, f"Skipped: {plural(len(paths), *what)}.", paths))
    tiny = sorted(relative_to_root(p, root) for p, c in by_path.items()
                  if not c.problem and min(c.width, c.height) < MIN_SIDE)
    if tiny:
        problems.append(Problem(
            "tiny images", "warning",
            f"Tiny: {plural(len(tiny), 'image', 'images')} smaller than {MIN_SIDE} px on a side, "
            "too small to learn much from.", tiny,
        ))
    return problems


def class_table(scan: FolderScan, by_path: dict[Path, ImageCheck]) -> dict[str, dict[str, int]]:
    """Readable images per class and split, plus the unreadable ones."""
    names = sorted({name for by_class in scan.images.values() for name in by_class})
    table = {name: {"train": 0, "val": 0, "test": 0, "unreadable": 0} for name in names}
    for split, by_class in scan.images.items():
        for name, paths in by_class.items():
            for path in paths:
                table[name]["unreadable" if by_path[path].problem else split] += 1
    return table


def class_problems(scan: FolderScan, classes: dict[str, dict[str, int]]) -> list[Problem]:
    """Empty classes, small classes, classes missing from val/ or test/."""
    problems = []
    train_dir = scan.split_dirs["train"]
    empty = [name for name in scan.images["train"] if classes[name]["train"] == 0]
    if empty:
        problems.append(Problem(
            "empty classes", "warning",
            f"Empty: {plural(len(empty), 'class folder', 'class folders')} with no readable training image "
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


def imbalance_problems(balance: Balance) -> list[Problem]:
    """A warning when the classes are uneven enough to be worth handling (see balance.py)."""
    if not balance.imbalanced:
        return []
    return [Problem(
        "class imbalance", "warning",
        f"class imbalance: {balance.largest} has {balance.ratio:.1f}x the training images of "
        f"{balance.smallest} (above {IMBALANCE_LIMIT:g}); train --balance auto (the default) "
        "weights the loss to make up for it, or add photos to the small classes.",
    )]
