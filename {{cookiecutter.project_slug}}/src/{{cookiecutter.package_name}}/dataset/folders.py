"""Find the images in a dataset folder: its classes, its train/val/test splits, and what to leave out.

Folder convention (class names are folder names, sorted)::

    data/my-pets/train/<class>/*.jpg   required (or the class folders directly in data/my-pets/)
    data/my-pets/val/<class>/*.jpg     optional: if absent, a stratified, seeded split of train
    data/my-pets/test/<class>/*.jpg    optional: evaluated once after training

Images may sit in subfolders of a class folder; extensions count in any case (.JPG, .Jpeg). Hidden
files (.DS_Store), files that are not images, and images that cannot be decoded are left out and
listed, never a crash. A class folder with no usable image is skipped with a warning.

Nothing here imports PyTorch, so ``check-data`` starts at once; ``data.py`` turns the result into
PyTorch datasets.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.files import IMAGE_EXTENSIONS, is_hidden, is_image_file
from {{ cookiecutter.package_name }}.dataset.inspection import TOO_LARGE
from {{ cookiecutter.package_name }}.dataset.parallel import find_unreadable
from {{ cookiecutter.package_name }}.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
# Other names people (and dataset exporters) give the split folders, compared in lowercase.
SPLIT_ALIASES = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}

# What ``review`` keeps in the data folder (review/changes.py): photos it removed, and its log. Neither is
# part of the dataset, and neither is reported as a stray file.
REMOVED_FOLDER, REVIEW_LOG = ".removed", "review-log.csv"

# Why a file was left out, as written in skipped.csv and counted in the start-up summary.
HIDDEN, NOT_AN_IMAGE, OUTSIDE, UNREADABLE, NO_TRAIN = (
    "hidden", "not an image", "not in a class folder", "unreadable", "class has no training images",
)


@dataclass
class Sample:
    path: Path
    label: int


@dataclass
class FolderScan:
    """What is on disk, before anything is decided: image files per split and class, and the rest."""

    root: Path
    split_dirs: dict[str, Path]  # the split folders found; "train" may be the root itself
    images: dict[str, dict[str, list[Path]]]  # split -> class folder name -> image files (maybe none)
    skipped: dict[Path, str] = field(default_factory=dict)  # file -> why it is left out

    def all_images(self) -> list[Path]:
        return [path for classes in self.images.values() for paths in classes.values() for path in paths]


@dataclass
class DatasetSplits:
    """What ``find_dataset`` found: class names and the images of each split."""

    root: Path
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    val_was_made: bool  # True when val is a split of train (no val/ folder)
    skipped: Counter = field(default_factory=Counter)  # e.g. {"hidden": 2, "not an image": 1}
    empty_classes: list[str] = field(default_factory=list)
    skipped_files: dict[Path, str] = field(default_factory=dict)  # every file left out, and why

    def train_counts(self) -> list[int]:
        """Training images per class, in label order: the one count that balance, check-data and report.md use."""
        counts = Counter(sample.label for sample in self.train)
        return [counts[label] for label in range(len(self.classes))]


# ---- scanning -----------------------------------------------------------------------------------
def _split_dir(root: Path, split: str) -> Path | None:
    """root/train, root/Train, root/validation, ...: the folder holding ``split``, if there is one."""
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in SPLIT_ALIASES[split]:
            return child
    return None


def _images_by_class(folder: Path, skipped: dict[Path, str], ignore: tuple[Path, ...] = ()) -> dict[str, list[Path]]:
    """Class folder name -> its image files (searched recursively, sorted). Other files go to ``skipped``."""
    found = {}
    for child in sorted(folder.iterdir()):
        if child in ignore:
            continue
        if is_hidden(child):
            for path in [child] if child.is_file() else sorted(p for p in child.rglob("*") if p.is_file()):
                skipped[path] = HIDDEN
        elif child.is_file():
            skipped[child] = OUTSIDE
        elif child.is_dir():
            images = []
            for path in sorted(child.rglob("*")):
                if not path.is_file():
                    continue
                if any(is_hidden(Path(part)) for part in path.relative_to(child).parts):
                    skipped[path] = HIDDEN
                elif is_image_file(path):
                    images.append(path)
                else:
                    skipped[path] = NOT_AN_IMAGE
            found[child.name] = images
    return found


def scan_folder(data_dir: str | Path) -> FolderScan:
    """List a dataset folder's images by split and class, or explain in one line why it cannot be used."""
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise UserError(f"data folder {root} does not exist; check the path (put photos in {root}/train/<class>/).")
    if not root.is_dir():
        raise UserError(f"--data must be a folder of class folders, but {root} is a file.")
    split_dirs = {split: folder for split in SPLIT_NAMES if (folder := _split_dir(root, split))}
    train_dir = split_dirs.setdefault("train", root)
    if not any(p.is_dir() and not is_hidden(p) for p in train_dir.iterdir()):
        if any(is_image_file(p) for p in train_dir.iterdir()):
            raise UserError(
                f"{train_dir} holds images but no class folders; it looks like one class. "
                f"Point --data at its parent folder, the one that contains a folder per class."
            )
        raise UserError(f"{root} has no class folders; put photos in {root}/train/<class>/ (one folder per class).")

    skipped: dict[Path, str] = {}
    # With the classes directly in the root, val/ and test/ next to them are splits, not classes.
    others = tuple(folder for split, folder in split_dirs.items() if split != "train")
    ours = (root / REMOVED_FOLDER, root / REVIEW_LOG)
    images = {"train": _images_by_class(train_dir, skipped, ignore=others + ours if train_dir == root else ())}
    for split, folder in split_dirs.items():
        if split != "train":
            images[split] = _images_by_class(folder, skipped)
    return FolderScan(root=root, split_dirs=split_dirs, images=images, skipped=skipped)


# ---- deciding what to train on ------------------------------------------------------------------
def stratified_split(paths_by_class: dict[str, list[Path]], fraction: float, seed: int):
    """Hold out ``fraction`` of every class (at least one image when a class has two or more)."""
    rng = random.Random(seed)
    train, val = {}, {}
    for name, paths in paths_by_class.items():
        shuffled = sorted(paths)
        rng.shuffle(shuffled)
        n_val = max(1, round(len(shuffled) * fraction)) if len(shuffled) >= 2 else 0
        val[name], train[name] = shuffled[:n_val], shuffled[n_val:]
    return train, val


def build_splits(scan: FolderScan, val_fraction: float = 0.2, seed: int = 42,
                 unreadable: dict[Path, str] | None = None) -> DatasetSplits:
    """Decide classes and splits from a scan, leaving out ``unreadable`` files (path -> decoder's reason).

    Raises ``UserError`` for a dataset that cannot be trained on: fewer than two classes with images,
    a val/test class that has no training folder, or no image left for validation.
    """
    unreadable = unreadable or {}
    skipped = dict(scan.skipped)
    # "too large - 240 megapixels; ..." is a valid picture, counted apart from the broken ones.
    skipped.update((path, f"{TOO_LARGE}: {reason.removeprefix(TOO_LARGE + ' - ')}" if reason.startswith(TOO_LARGE)
                    else f"{UNREADABLE}: {reason}") for path, reason in unreadable.items())

    def usable(paths_by_class: dict[str, list[Path]]) -> dict[str, list[Path]]:
        return {name: [p for p in paths if p not in unreadable] for name, paths in paths_by_class.items()}

    train_dir = scan.split_dirs["train"]
    found = {split: usable(by_class) for split, by_class in scan.images.items()}
    train_paths = {name: paths for name, paths in found["train"].items() if paths}
    empty = sorted(name for name, paths in found["train"].items() if not paths)
    classes = sorted(train_paths)
    if len(classes) < 2:
        loose = sum(1 for path, why in scan.skipped.items() if why == OUTSIDE and path.parent == train_dir
                    and path.suffix.lower() in IMAGE_EXTENSIONS)
        if loose:  # photos next to a subfolder or two: --data points at a class folder
            raise UserError(
                f"{train_dir} holds {loose} images of its own, so it looks like a class folder; point --data "
                "at its parent folder, the one that contains a folder per class."
            )
        with_images = f": only {classes[0]}" if classes else ""
        raise UserError(
            f"{train_dir} has {len(classes)} class folder(s) with readable images{with_images}; a classifier "
            "needs at least 2 (one folder per class, with photos inside)."
        )
    index = {name: i for i, name in enumerate(classes)}

    other: dict[str, dict[str, list[Path]]] = {}
    for split in ("val", "test"):
        by_class = found.get(split, {})
        unknown = sorted(set(by_class) - set(found["train"]))
        if unknown:
            raise UserError(
                f"{scan.split_dirs[split]} has class folder(s) {', '.join(unknown)} that are not in {train_dir}; "
                "every class needs a training folder (check the spelling of the folder names)."
            )
        for name in set(by_class) - set(index):  # classes whose training folder is empty
            skipped.update((path, NO_TRAIN) for path in by_class[name])
        other[split] = {name: paths for name, paths in by_class.items() if name in index}

    val_paths = other["val"]
    val_was_made = not any(val_paths.values())
    if val_was_made:
        train_paths, val_paths = stratified_split(train_paths, val_fraction, seed)
    if not any(val_paths.values()):
        raise UserError("no validation images: every class needs at least 2 images (or add a val/ folder).")

    def to_samples(paths_by_class: dict[str, list[Path]]) -> list[Sample]:
        return [Sample(p, index[name]) for name in sorted(paths_by_class) for p in paths_by_class[name]]

    return DatasetSplits(
        root=scan.root,
        classes=classes,
        train=to_samples(train_paths),
        val=to_samples(val_paths),
        test=to_samples(other["test"]),
        val_was_made=val_was_made,
        skipped=Counter(reason.split(":")[0] for reason in skipped.values()),
        empty_classes=empty,
        skipped_files=skipped,
    )


def find_dataset(data_dir: str | Path, val_fraction: float = 0.2, seed: int = 42,
                 check_images: bool = False) -> DatasetSplits:
    """Scan a dataset folder into train/val/test lists, or explain in one line why it cannot be used.

    ``check_images=True`` (what ``train`` does) first decodes every image, in parallel, and leaves out
    the ones that fail, so a bad file can never stop training half way through an epoch.
    """
    scan = scan_folder(data_dir)
    unreadable = {}
    if check_images:
        unreadable = find_unreadable(scan.all_images())
    return build_splits(scan, val_fraction, seed, unreadable)


# ---- writing down what was used -------------------------------------------------------------------
def write_splits_csv(splits: DatasetSplits, path: Path) -> None:
    """The split actually used, one row per image: path (relative to the data folder), class, split."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "class", "split"])
        for split in SPLIT_NAMES:
            for sample in getattr(splits, split):
                writer.writerow([relative_to_root(sample.path, splits.root), splits.classes[sample.label], split])


def write_skipped_csv(splits: DatasetSplits, path: Path) -> None:
    """Every file left out of training, one row each: path (relative to the data folder), reason."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "reason"])
        for skipped, reason in sorted(splits.skipped_files.items()):
            writer.writerow([relative_to_root(skipped, splits.root), reason])


def relative_to_root(path: Path | str, root: Path) -> str:
    """``path`` relative to the dataset folder, as written in reports and CSV files (as given if outside it)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()
