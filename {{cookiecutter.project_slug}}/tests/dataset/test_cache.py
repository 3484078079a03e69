"""Small datasets are decoded once; what the model sees does not change."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.data import ImageFolderDataModule, build_transforms
from {{ cookiecutter.package_name }}.dataset import cache
from {{ cookiecutter.package_name }}.dataset.folders import Sample, find_dataset
from {{ cookiecutter.package_name }}.dataset.image_dataset import ImageDataset
from {{ cookiecutter.package_name }}.model.network import model_data_config

from ..conftest import TINY_MODEL, make_image_folder


def datamodule(folder: Path, size: int = 32) -> ImageFolderDataModule:
    splits = find_dataset(folder, 0.25, 42)
    data_config = model_data_config(timm.create_model(TINY_MODEL, num_classes=3), size)
    return ImageFolderDataModule(splits, data_config, batch_size=4)


def test_square_is_the_centre_of_the_photo_at_the_cache_size() -> None:
    """A 400x300 photo becomes its central 300x300 square at 48x48; a small one is enlarged to the same shape."""
    photo = Image.new("RGB", (400, 300), (255, 0, 0))
    photo.paste((0, 0, 255), (0, 0, 50, 300))  # a blue band on the left eighth: outside the centre square
    squared = cache.square(photo, 48)
    assert squared.shape == (3, 48, 48) and squared.dtype == torch.uint8
    assert squared[2].max() < 30 and squared[0].min() > 225  # no blue left: only the centre is kept
    assert cache.square(Image.new("RGB", (40, 30)), 48).shape == (3, 48, 48)


def test_train_and_val_are_decoded_once_and_test_is_read_from_disk(tmp_path: Path) -> None:
    """After setup('fit') train and val come from memory: deleting the files changes nothing."""
    folder = make_image_folder(tmp_path / "pets", per_class=4, splits=("train", "test"))
    dm = datamodule(folder)
    dm.setup("fit")
    assert dm.datasets["train"].cache is not None and dm.datasets["val"].cache is not None
    assert dm.datasets["test"].cache is None
    side = cache.cache_side(32, dm.data_config["crop_pct"])
    cached = dm.datasets["train"].cache.images
    assert cached.shape == (len(dm.splits.train), 3, side, side) and cached.dtype == torch.uint8
    before = torch.stack([dm.datasets["val"][i][0] for i in range(len(dm.datasets["val"]))])
    for sample in dm.splits.train + dm.splits.val:
        sample.path.unlink()
    after = torch.stack([dm.datasets["val"][i][0] for i in range(len(dm.datasets["val"]))])
    assert torch.equal(before, after)
    images, labels, indices = next(iter(dm.train_dataloader()))
    # Training batches are the cached squares; the device crops them to 32 px (train_augmentation).
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, side, side)
    assert torch.equal(images[0], cached[indices[0]])


def test_cached_images_match_images_decoded_from_disk(tmp_path: Path) -> None:
    """The validation view of a cached image equals the one decoded from the file (within rounding)."""
    folder = make_image_folder(tmp_path / "pets", per_class=4)
    plain, cached = datamodule(folder), datamodule(folder)
    cached.setup("fit")
    for i in range(len(plain.datasets["val"])):
        difference = plain.datasets["val"][i][0].float() - cached.datasets["val"][i][0].float()
        assert difference.abs().mean() < 3


def test_a_cached_landscape_photo_validates_exactly_as_predict_sees_it(tmp_path: Path) -> None:
    """A cached 4:3 photo gives validation exactly the pixels predict makes of the file."""
    photo = Image.effect_mandelbrot((120, 90), (-2, -1.2, 1, 1.2), 60).convert("RGB")  # detail everywhere
    photo.save(tmp_path / "wide.png")
    config = model_data_config(timm.create_model(TINY_MODEL, num_classes=3), 32)
    plain = ImageDataset([Sample(tmp_path / "wide.png", 0)], build_transforms(config, training=False), 64)
    cached = ImageDataset(plain.samples, plain.transform, 64)
    cached.fill_cache()
    assert torch.equal(plain[0][0], cached[0][0])


def test_datasets_over_the_memory_budget_are_not_cached(tmp_path: Path, monkeypatch) -> None:
    """Big datasets keep being read from disk instead of filling the memory."""
    monkeypatch.setattr(cache, "CACHE_BUDGET_BYTES", 1000)
    dm = datamodule(make_image_folder(tmp_path / "pets", per_class=4))
    dm.setup("fit")
    assert dm.datasets["train"].cache is None and dm.datasets["val"].cache is None
