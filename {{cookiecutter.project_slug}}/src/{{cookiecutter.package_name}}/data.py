"""Feed the images to the model: transforms, the training augmentation and the DataModule.

Which images there are, and in which split, is decided in ``dataset/folders.py`` (``find_dataset``).
Images leave the DataLoader as uint8 tensors of one fixed shape. Training images are squares
decoded once (dataset/cache.py); the random crop, flip and colour jitter then run on the whole batch on the
device, where they cost a fraction of a training step (``train_augmentation``, called from
``Classifier.on_after_batch_transfer``). Worker processes only hand out cached pixels.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning as L
import torch
from timm.data import create_transform
from torch.utils.data import DataLoader

from {{ cookiecutter.package_name }}.dataset.augmentation import DeviceAugmentation
from {{ cookiecutter.package_name }}.dataset.cache import cache_side, fits_in_cache, square
from {{ cookiecutter.package_name }}.dataset.decode import decode_size
from {{ cookiecutter.package_name }}.dataset.folders import DatasetSplits
from {{ cookiecutter.package_name }}.dataset.image_dataset import ImageDataset, training_sampler

# Training augmentation. Random crops keep at least 75% of the photo, as fastai's standard recipe does:
# timm's ImageNet default (8%) is made for long training from scratch; smaller crops often cut the
# subject out of the photo, and a short fine-tune cannot make up for that.
TRAIN_CROP_SCALE = (0.75, 1.0)
TRAIN_CROP_RATIO = (3 / 4, 4 / 3)  # width / height of a crop before it is resized to a square (timm's range)
# Random brightness/contrast/saturation of +-20%.
COLOR_JITTER = 0.2


def build_transforms(data_config: dict[str, Any], training: bool):
    """timm's standard transforms for this model's input size, interpolation and crop.

    ``use_prefetcher=True`` makes timm stop at a uint8 tensor: normalisation happens on the device.
    Training uses ``train_augmentation`` instead, on the device; the training transform here is the
    reference that tests compare it with.
    """
    extra = {"scale": TRAIN_CROP_SCALE, "ratio": TRAIN_CROP_RATIO, "color_jitter": None} if training else {}
    return create_transform(
        input_size=data_config["input_size"], interpolation=data_config["interpolation"], mean=data_config["mean"],
        std=data_config["std"], crop_pct=data_config["crop_pct"], crop_mode=data_config.get("crop_mode", "center"),
        is_training=training, use_prefetcher=True, **extra,
    )


def train_augmentation(data_config: dict[str, Any], jitter: float = COLOR_JITTER,
                       flip: bool = True) -> DeviceAugmentation:
    """The training augmentation for this model's input size: a random crop (``TRAIN_CROP_SCALE`` of the
    square, ``TRAIN_CROP_RATIO``), a horizontal flip (unless ``flip`` is off: ``--no-flip``) and colour
    jitter, every image of a batch differently, on the device (``dataset/augmentation.py``)."""
    # kornia knows bilinear and bicubic; timm's other choices (e.g. "random") fall back to bilinear.
    resample = "bicubic" if data_config["interpolation"] == "bicubic" else "bilinear"
    return DeviceAugmentation(data_config["input_size"][-1], TRAIN_CROP_SCALE, TRAIN_CROP_RATIO, jitter, resample,
                              flip)


class ImageFolderDataModule(L.LightningDataModule):
    """Serves the train/val/test splits found by ``find_dataset`` with timm's transforms."""

    def __init__(self, splits: DatasetSplits, data_config: dict[str, Any], batch_size: int,
                 num_workers: int = 0, pin_memory: bool = False, balanced_sampling: bool = False):
        super().__init__()
        self.splits, self.data_config, self.batch_size = splits, data_config, batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.balanced_sampling = balanced_sampling  # --balance sampler: small classes drawn more often
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
        if fits_in_cache(len(self.datasets["train"]) + len(self.datasets["val"]), side, self.num_workers):
            for split in ("train", "val") if stage == "fit" else ("val",):
                self.datasets[split].fill_cache()

    def _loader(self, split: str, shuffle: bool, num_batches: int | None = None) -> DataLoader:
        dataset = self.datasets[split]
        draws = num_batches * self.batch_size if num_batches else None
        sampler = training_sampler(dataset, self.balanced_sampling, draws) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                          # A last batch of one image would break BatchNorm in training mode.
                          drop_last=shuffle and len(dataset) > self.batch_size, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self, num_batches: int | None = None) -> DataLoader:
        """Called by Lightning at the start of fit: shuffled training batches. ``num_batches``: an epoch of
        exactly that many, drawn with replacement (the LR finder's search, see training/lr_finder.py)."""
        return self._loader("train", shuffle=True, num_batches=num_batches)

    def val_dataloader(self) -> DataLoader:
        """Called by Lightning before each validation pass: the val split, in a fixed order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Called by Lightning's ``trainer.test``: the test split, evaluated once after training."""
        return self._loader("test", shuffle=False)


def images_to_float(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    augment: DeviceAugmentation | None = None) -> torch.Tensor:
    """uint8 NCHW batch -> normalised float batch (what the network expects).

    ``augment`` (training only, see ``train_augmentation``) crops, flips and jitters the batch first.
    """
    images = images.float() / 255.0
    if augment is not None:
        images = augment(images)
    return (images - mean) / std
