"""Feed the images to the model: datasets, transforms and the DataModule.

Which images there are, and in which split, is decided in ``folders.py`` (``find_dataset``)::

    data/my-pets/train/<class>/*.jpg   required (or the class folders directly in data/my-pets/)
    data/my-pets/val/<class>/*.jpg     optional: if absent, a stratified, seeded split of train
    data/my-pets/test/<class>/*.jpg    optional: evaluated once after training

Images leave the DataLoader as uint8 tensors of one fixed shape. Training images are squares
decoded once (cache.py); the random crop, flip and colour jitter then run on the whole batch on the
device, where they cost a fraction of a training step (``train_augmentation``, called from
``Classifier.on_after_batch_transfer``). Worker processes only hand out cached pixels.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import kornia.augmentation as K
import lightning as L
import torch
from PIL import Image
from timm.data import create_transform
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from {{ cookiecutter.package_name }}.cache import DecodedCache, cache_side, fits_in_cache, square
from {{ cookiecutter.package_name }}.folders import (  # noqa: F401 (find_dataset & co. are imported from here too)
    SPLIT_NAMES,
    DatasetSplits,
    Sample,
    find_dataset,
    imbalance_ratio,
    write_skipped_csv,
    write_splits_csv,
)
from {{ cookiecutter.package_name }}.images import load_rgb

# Training augmentation. Random crops keep at least 75% of the photo, as fastai's standard recipe does:
# timm's ImageNet default (8%) is made for long training from scratch, and even 25% often cut the
# subject out of a short fine-tune (on the benchmark's 64 px digits: 64% accuracy at 25%, 82% at 75%).
TRAIN_CROP_SCALE = (0.75, 1.0)
TRAIN_CROP_RATIO = (3 / 4, 4 / 3)  # width / height of a crop before it is resized to a square (timm's range)
# Random brightness/contrast/saturation of +-20%.
COLOR_JITTER = 0.2


def decode_size(data_config: dict[str, Any]) -> int:
    """Big JPEGs are decoded at about twice the model's input size: enough detail for random crops,
    several times faster than full size. predict and export use the same rule."""
    return 2 * data_config["input_size"][-1]


def build_transforms(data_config: dict[str, Any], training: bool):
    """timm's standard transforms for this model's input size, interpolation and crop.

    ``use_prefetcher=True`` makes timm stop at a uint8 tensor: normalisation happens on the device.
    Training no longer uses these (see ``train_augmentation``); they are kept as the reference that
    tests compare the device augmentation with.
    """
    extra = {"scale": TRAIN_CROP_SCALE, "ratio": TRAIN_CROP_RATIO, "color_jitter": None} if training else {}
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


class DeviceAugmentation:
    """Random resized crop, horizontal flip and colour jitter for a float batch in [0, 1], on its device.

    kornia draws new parameters for every image of the batch (torchvision's v2 transforms would give
    a whole batch the same crop), with the same rules as timm's training transform: crop area 75-100%
    of the square, aspect ratio 3:4 to 4:3, then resized to the model's input size. The squares are
    only a little bigger than that, so resampling them needs no anti-aliasing.

    A plain object, not a submodule of the model: when Lightning moves the model to the GPU, kornia
    keeps drawing its random numbers on the CPU and sends them over without making the CPU wait for
    the GPU (random numbers drawn on the GPU would be read back, a wait at every step).
    """

    def __init__(self, data_config: dict[str, Any], jitter: float = COLOR_JITTER):
        size = data_config["input_size"][-1]
        # kornia knows bilinear and bicubic; timm's other choices (e.g. "random") fall back to bilinear.
        resample = "bicubic" if data_config["interpolation"] == "bicubic" else "bilinear"
        steps = [
            # "resample" crops the whole batch in one warp; the default ("slice") loops over the images.
            K.RandomResizedCrop((size, size), scale=TRAIN_CROP_SCALE, ratio=TRAIN_CROP_RATIO, resample=resample,
                                cropping_mode="resample"),
            K.RandomHorizontalFlip(),
        ]
        if jitter > 0:
            steps.append(K.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        self.steps = nn.Sequential(*steps)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.steps(images)


def train_augmentation(data_config: dict[str, Any], jitter: float = COLOR_JITTER) -> DeviceAugmentation:
    """The training augmentation for this model's input size (see ``DeviceAugmentation``)."""
    return DeviceAugmentation(data_config, jitter)


class ImageDataset(Dataset):
    """A list of (path, label) samples; yields (uint8 image tensor, label, index).

    ``transform`` turns a decoded photo into a fixed-shape uint8 tensor: for training the square
    that the device crops and flips later (``cache.square``), for validation and test timm's
    evaluation transform, exactly as predict prepares a photo.
    """

    def __init__(self, samples: list[Sample], transform, decode_size: int | None = None):
        self.samples = samples
        self.transform = transform
        self.decode_size = decode_size
        self.cache: DecodedCache | None = None  # filled by ``fill_cache`` when the images fit in memory

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: Path) -> Image.Image:
        return load_rgb(path, min_size=self.decode_size)

    def fill_cache(self) -> None:
        """Decode every image once and keep what ``transform`` makes of it (see cache.py)."""
        if self.cache is None and self.samples:
            paths = [sample.path for sample in self.samples]
            self.cache = DecodedCache(paths, lambda path: self.transform(self.load(path)))

    def __getitem__(self, index: int):
        sample = self.samples[index]
        image = self.cache[index] if self.cache is not None else self.transform(self.load(sample.path))
        return image, sample.label, index


class ImageFolderDataModule(L.LightningDataModule):
    """Serves the train/val/test splits found by ``find_dataset`` with timm's transforms."""

    def __init__(self, splits: DatasetSplits, data_config: dict[str, Any], batch_size: int,
                 num_workers: int = 0, pin_memory: bool = False, balanced_sampling: bool = False):
        super().__init__()
        self.splits = splits
        self.balanced_sampling = balanced_sampling  # --balance sampler: small classes drawn more often
        self.data_config = data_config
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        decode = decode_size(data_config)
        # Training photos become fixed-size squares, cropped and flipped later on the device.
        side = cache_side(data_config["input_size"][-1], data_config["crop_pct"])
        evaluation = build_transforms(data_config, training=False)
        self.datasets = {
            "train": ImageDataset(splits.train, functools.partial(square, side=side), decode),
            "val": ImageDataset(splits.val, evaluation, decode),
            "test": ImageDataset(splits.test, evaluation, decode),
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
        method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
        forked = method == "fork"
        copies = 1 if self.num_workers == 0 or forked else self.num_workers
        if fits_in_cache(sum(len(d) for d in self.datasets.values() if d is not self.datasets["test"]), side, copies):
            for dataset in splits:
                dataset.fill_cache()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        sampler = balanced_sampler(dataset.samples) if shuffle and self.balanced_sampling else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
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


def class_weights(counts: list[int]) -> list[float]:
    """Loss weight per class, inversely proportional to its number of training images (mean weight 1).

    With these weights a mistake on a rare class costs as much, in total, as one on a common class.
    """
    present = [count for count in counts if count > 0]
    return [len(present) * (1 / count) / sum(1 / c for c in present) if count else 0.0 for count in counts]


def balanced_sampler(samples: list[Sample]) -> WeightedRandomSampler:
    """Draws training images so that every class comes up equally often (with replacement)."""
    counts = Counter(sample.label for sample in samples)
    weights = [1.0 / counts[sample.label] for sample in samples]
    return WeightedRandomSampler(weights, num_samples=len(samples), replacement=True)


def images_to_float(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    augment: DeviceAugmentation | None = None) -> torch.Tensor:
    """uint8 NCHW batch -> normalised float batch (what the network expects).

    ``augment`` (training only, see ``train_augmentation``) crops, flips and jitters the batch first.
    """
    images = images.float() / 255.0
    if augment is not None:
        images = augment(images)
    return (images - mean) / std
