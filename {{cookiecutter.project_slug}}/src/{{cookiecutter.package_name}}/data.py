"""Find the images, split them, and feed them to the model.

Folder convention (class names are folder names, sorted)::

    data/my-pets/train/<class>/*.jpg   required (or the class folders directly in data/my-pets/)
    data/my-pets/val/<class>/*.jpg     optional: if absent, a stratified, seeded split of train
    data/my-pets/test/<class>/*.jpg    optional: evaluated once after training

Images leave the DataLoader as uint8 tensors; the model normalises them on the device
(see ``Classifier.on_after_batch_transfer``), which keeps worker processes cheap.
"""

from __future__ import annotations

import csv
import multiprocessing
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from timm.data import create_transform
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from {{ cookiecutter.package_name }}.cache import DecodedCache, cache_side, fits_in_cache
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.images import is_hidden, is_image_file, load_rgb

SPLIT_NAMES = ("train", "val", "test")

# Training augmentation. Random crops keep at least 25% of the photo: timm's ImageNet default (8%)
# is too aggressive for a short fine-tune on a few hundred images.
TRAIN_CROP_SCALE = (0.25, 1.0)
COLOR_JITTER = 0.2


@dataclass
class Sample:
    path: Path
    label: int


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

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class per split, for the start-up summary and metrics.json."""
        table = {name: {split: 0 for split in SPLIT_NAMES} for name in self.classes}
        for split in SPLIT_NAMES:
            for sample in getattr(self, split):
                table[self.classes[sample.label]][split] += 1
        return table


def _images_by_class(folder: Path, skipped: Counter) -> dict[str, list[Path]]:
    """Class folder name -> its image files (searched recursively, sorted)."""
    found = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p)):
        images = []
        for path in sorted(class_dir.rglob("*")):
            if not path.is_file():
                continue
            if any(part.startswith(".") for part in path.relative_to(class_dir).parts):
                skipped["hidden"] += 1
            elif is_image_file(path):
                images.append(path)
            else:
                skipped["not an image"] += 1
        found[class_dir.name] = images
    return found


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


def find_dataset(data_dir: str | Path, val_fraction: float = 0.2, seed: int = 42) -> DatasetSplits:
    """Scan a dataset folder into train/val/test lists, or explain in one line why it cannot be used."""
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise UserError(f"data folder {root} does not exist; check the path (put photos in {root}/train/<class>/).")
    if not root.is_dir():
        raise UserError(f"--data must be a folder of class folders, but {root} is a file.")
    train_dir = root / "train" if (root / "train").is_dir() else root
    if not any(p.is_dir() for p in train_dir.iterdir() if not is_hidden(p)):
        if any(is_image_file(p) for p in train_dir.iterdir()):
            raise UserError(
                f"{root} holds images but no class folders; it looks like one class. "
                f"Point --data at its parent folder, the one that contains a folder per class."
            )
        raise UserError(f"{root} has no class folders; put photos in {root}/train/<class>/ (one folder per class).")

    skipped: Counter = Counter()
    train_paths = _images_by_class(train_dir, skipped)
    if train_dir is root:
        for split in ("val", "test"):  # split folders sitting next to classes are not classes
            train_paths.pop(split, None)
    empty = [name for name, paths in train_paths.items() if not paths]
    train_paths = {name: paths for name, paths in train_paths.items() if paths}
    classes = sorted(train_paths)
    if len(classes) < 2:
        raise UserError(
            f"{train_dir} has {len(classes)} class folder(s) with images; a classifier needs at least 2 "
            "(one folder per class, with photos inside)."
        )
    index = {name: i for i, name in enumerate(classes)}

    def to_samples(paths_by_class: dict[str, list[Path]]) -> list[Sample]:
        return [Sample(p, index[name]) for name, paths in paths_by_class.items() if name in index for p in paths]

    def other_split(name: str) -> dict[str, list[Path]]:
        folder = root / name
        if train_dir is root or not folder.is_dir():
            return {}
        found = _images_by_class(folder, skipped)
        unknown = sorted(set(found) - set(index))
        if unknown:
            raise UserError(
                f"{folder} has class folder(s) {', '.join(unknown)} that are not in {train_dir}; "
                "every class needs training images."
            )
        return found

    val_paths = other_split("val")
    val_was_made = not any(val_paths.values())
    if val_was_made:
        train_paths, val_paths = stratified_split(train_paths, val_fraction, seed)
    return DatasetSplits(
        root=root,
        classes=classes,
        train=to_samples(train_paths),
        val=to_samples(val_paths),
        test=to_samples(other_split("test")),
        val_was_made=val_was_made,
        skipped=skipped,
        empty_classes=empty,
    )


def write_splits_csv(splits: DatasetSplits, path: Path) -> None:
    """The split actually used, one row per image: path (relative to the data folder), class, split."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "class", "split"])
        for split in SPLIT_NAMES:
            for sample in getattr(splits, split):
                writer.writerow([sample.path.relative_to(splits.root).as_posix(), splits.classes[sample.label], split])


def decode_size(data_config: dict[str, Any]) -> int:
    """Big JPEGs are decoded at about twice the model's input size: enough detail for random crops,
    several times faster than full size. predict and export use the same rule."""
    return 2 * data_config["input_size"][-1]


def build_transforms(data_config: dict[str, Any], training: bool):
    """timm's standard transforms for this model's input size, interpolation and crop.

    ``use_prefetcher=True`` makes timm stop at a uint8 tensor: normalisation happens on the device.
    """
    extra = {"scale": TRAIN_CROP_SCALE, "color_jitter": COLOR_JITTER} if training else {}
    return create_transform(
        input_size=data_config["input_size"],
        interpolation=data_config["interpolation"],
        mean=data_config["mean"],
        std=data_config["std"],
        crop_pct=data_config["crop_pct"],
        crop_mode=data_config.get("crop_mode", "center"),
        is_training=training,
        use_prefetcher=True,
        **extra,
    )


class ImageDataset(Dataset):
    """A list of (path, label) samples; yields (uint8 image tensor, label, index)."""

    def __init__(self, samples: list[Sample], transform, decode_size: int | None = None):
        self.samples = samples
        self.transform = transform
        self.decode_size = decode_size
        self.cache: DecodedCache | None = None  # filled by ``fill_cache`` when the images fit in memory

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: Path) -> Image.Image:
        return load_rgb(path, min_size=self.decode_size)

    def fill_cache(self, side: int) -> None:
        """Decode every image once, shrunk to shorter side ``side`` (see cache.py)."""
        if self.cache is None:
            self.cache = DecodedCache([sample.path for sample in self.samples], self.load, side)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        image = self.cache[index] if self.cache is not None else self.load(sample.path)
        return self.transform(image), sample.label, index


class ImageFolderDataModule(L.LightningDataModule):
    """Serves the train/val/test splits found by ``find_dataset`` with timm's transforms."""

    def __init__(self, splits: DatasetSplits, data_config: dict[str, Any], batch_size: int,
                 num_workers: int = 0, pin_memory: bool = False):
        super().__init__()
        self.splits = splits
        self.data_config = data_config
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        decode = decode_size(data_config)
        self.datasets = {
            "train": ImageDataset(splits.train, build_transforms(data_config, training=True), decode),
            "val": ImageDataset(splits.val, build_transforms(data_config, training=False), decode),
            "test": ImageDataset(splits.test, build_transforms(data_config, training=False), decode),
        }

    def setup(self, stage: str) -> None:
        """Called by Lightning on every process before fit/validate/test: decode small datasets once.

        Train and val are read every epoch, so they are cached when they fit in memory; test is read once.
        """
        if stage not in ("fit", "validate"):
            return
        side = cache_side(self.data_config["input_size"][-1], self.data_config["crop_pct"])
        splits = [self.datasets["train"], self.datasets["val"]] if stage == "fit" else [self.datasets["val"]]
        # Forked workers share the parent's memory; spawned ones (macOS, Windows) get a copy each.
        forked = (multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]) == "fork"
        copies = 1 if self.num_workers == 0 or forked else self.num_workers
        if fits_in_cache(sum(len(d) for d in self.datasets.values() if d is not self.datasets["test"]), side, copies):
            for dataset in splits:
                dataset.fill_cache(side)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            # A last batch of one image would break BatchNorm in training mode.
            drop_last=shuffle and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Called by Lightning at the start of fit: shuffled training batches."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Called by Lightning before each validation pass: the val split, in a fixed order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Called by Lightning's ``trainer.test``: the test split, evaluated once after training."""
        return self._loader("test", shuffle=False)


def images_to_float(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW batch -> normalised float batch (what the network expects)."""
    return (images.float() / 255.0 - mean) / std
