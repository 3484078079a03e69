"""Feed the images to the model: datasets, transforms and the DataModule.

Which images there are, and in which split, is decided in ``folders.py`` (``find_dataset``)::

    data/my-pets/train/<class>/*.jpg   required (or the class folders directly in data/my-pets/)
    data/my-pets/val/<class>/*.jpg     optional: if absent, a stratified, seeded split of train
    data/my-pets/test/<class>/*.jpg    optional: evaluated once after training

Images leave the DataLoader as uint8 tensors; the model normalises them on the device
(see ``Classifier.on_after_batch_transfer``), which keeps worker processes cheap.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from timm.data import create_transform
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from {{ cookiecutter.package_name }}.cache import DecodedCache, cache_side, fits_in_cache
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
# Random brightness/contrast/saturation of +-20%. Applied to whole batches on the device (see
# images_to_float) rather than per image in the DataLoader: on a GPU, Pillow's colour jitter made
# the loader workers, not the GPU, the bottleneck.
COLOR_JITTER = 0.2


def decode_size(data_config: dict[str, Any]) -> int:
    """Big JPEGs are decoded at about twice the model's input size: enough detail for random crops,
    several times faster than full size. predict and export use the same rule."""
    return 2 * data_config["input_size"][-1]


def build_transforms(data_config: dict[str, Any], training: bool):
    """timm's standard transforms for this model's input size, interpolation and crop.

    ``use_prefetcher=True`` makes timm stop at a uint8 tensor: normalisation happens on the device.
    """
    extra = {"scale": TRAIN_CROP_SCALE, "color_jitter": None} if training else {}
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
                 num_workers: int = 0, pin_memory: bool = False, balanced_sampling: bool = False):
        super().__init__()
        self.splits = splits
        self.balanced_sampling = balanced_sampling  # --balance sampler: small classes drawn more often
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
        method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
        forked = method == "fork"
        copies = 1 if self.num_workers == 0 or forked else self.num_workers
        if fits_in_cache(sum(len(d) for d in self.datasets.values() if d is not self.datasets["test"]), side, copies):
            for dataset in splits:
                dataset.fill_cache(side)

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


def images_to_float(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, jitter: float = 0.0) -> torch.Tensor:
    """uint8 NCHW batch -> normalised float batch (what the network expects).

    ``jitter`` > 0 (training only) first changes each image's brightness, contrast and saturation by a
    random factor in [1 - jitter, 1 + jitter], like torchvision's ColorJitter, for the whole batch at once.
    """
    images = images.float() / 255.0
    if jitter > 0:
        images = jitter_colours(images, jitter)
    return (images - mean) / std


def jitter_colours(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Random brightness, contrast and saturation per image, for float images in [0, 1]."""

    def factors() -> torch.Tensor:
        return 1 + (torch.rand(len(images), 1, 1, 1, device=images.device) * 2 - 1) * strength

    images = images * factors()  # brightness
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * factors() + mean  # contrast: stretch around the image's mean
    grey = (images * torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    images = (images - grey) * factors() + grey  # saturation: move away from (or towards) grey
    return images.clamp(0, 1)
