"""Small datasets are decoded once; what the model sees does not change."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from PIL import Image

from {{ cookiecutter.package_name }} import cache
from {{ cookiecutter.package_name }}.data import ImageFolderDataModule
from {{ cookiecutter.package_name }}.folders import find_dataset
from {{ cookiecutter.package_name }}.model import model_data_config

from .conftest import TINY_MODEL, make_image_folder


def datamodule(folder: Path, size: int = 32) -> ImageFolderDataModule:
    splits = find_dataset(folder, 0.25, 42)
    data_config = model_data_config(timm.create_model(TINY_MODEL, num_classes=3), size)
    return ImageFolderDataModule(splits, data_config, batch_size=4)


def test_shrink_keeps_the_aspect_ratio_and_never_enlarges() -> None:
    """A 400x300 photo becomes 48 pixels on its shorter side; a small one is left alone."""
    assert cache.shrink(Image.new("RGB", (400, 300)), 48).size == (64, 48)
    assert cache.shrink(Image.new("RGB", (40, 30)), 48).size == (40, 30)


def test_train_and_val_are_decoded_once_and_test_is_read_from_disk(tmp_path: Path) -> None:
    """After setup('fit') train and val come from memory: deleting the files changes nothing."""
    folder = make_image_folder(tmp_path / "pets", per_class=4, splits=("train", "test"))
    dm = datamodule(folder)
    dm.setup("fit")
    assert dm.datasets["train"].cache is not None and dm.datasets["val"].cache is not None
    assert dm.datasets["test"].cache is None
    side = cache.cache_side(32, dm.data_config["crop_pct"])
    assert all(min(a.shape[:2]) == side and a.dtype.name == "uint8" for a in dm.datasets["val"].cache.arrays)
    before = torch.stack([dm.datasets["val"][i][0] for i in range(len(dm.datasets["val"]))])
    for sample in dm.splits.train + dm.splits.val:
        sample.path.unlink()
    after = torch.stack([dm.datasets["val"][i][0] for i in range(len(dm.datasets["val"]))])
    assert torch.equal(before, after)
    images, labels, _ = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)


def test_cached_images_match_images_decoded_from_disk(tmp_path: Path) -> None:
    """The validation view of a cached image equals the one decoded from the file (within rounding)."""
    folder = make_image_folder(tmp_path / "pets", per_class=4)
    plain, cached = datamodule(folder), datamodule(folder)
    cached.setup("fit")
    for i in range(len(plain.datasets["val"])):
        difference = plain.datasets["val"][i][0].float() - cached.datasets["val"][i][0].float()
        assert difference.abs().mean() < 3


def test_datasets_over_the_memory_budget_are_not_cached(tmp_path: Path, monkeypatch) -> None:
    """Big datasets keep being read from disk instead of filling the memory."""
    monkeypatch.setattr(cache, "CACHE_BUDGET_BYTES", 1000)
    dm = datamodule(make_image_folder(tmp_path / "pets", per_class=4))
    dm.setup("fit")
    assert dm.datasets["train"].cache is None and dm.datasets["val"].cache is None
