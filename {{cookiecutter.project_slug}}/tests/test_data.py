"""Feeding the images: the training augmentation on the device, the evaluation transform."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.data import build_transforms, images_to_float, train_augmentation
from {{ cookiecutter.package_name }}.model.network import model_data_config

from .conftest import TINY_MODEL


def coordinates(side: int) -> Image.Image:
    """A square picture whose red channel is the x and green channel the y coordinate of each pixel."""
    ramp = np.linspace(0, 255, side).round().astype(np.uint8)
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[..., 0], pixels[..., 1] = ramp[None, :], ramp[:, None]
    return Image.fromarray(pixels)


def crop_geometry(images: torch.Tensor, side: int) -> dict[str, np.ndarray]:
    """From crops of ``coordinates(side)`` (N, 3, H, W), read back each crop's area (share of the
    square), aspect ratio (width / height of the region taken) and whether it was mirrored."""
    images = images.double() * (side - 1) / 255  # pixel coordinates again
    left, right = images[:, 0, :, 0].mean(1), images[:, 0, :, -1].mean(1)
    top, bottom = images[:, 1, 0, :].mean(1), images[:, 1, -1, :].mean(1)
    width, height = (right - left).abs() + 1, (bottom - top) + 1
    return {"scale": (width * height / side**2).numpy(), "aspect": (width / height).numpy(),
            "flipped": (right < left).numpy()}


def test_device_augmentation_crops_and_flips_like_timms_transform() -> None:
    """Per image, the batched crops on the device have the same area and aspect-ratio distributions as
    timm's training transform (75-100% of the square, 3:4 to 4:3), and half of them are mirrored."""
    import timm

    from {{ cookiecutter.package_name }}.dataset.cache import cache_side
    from {{ cookiecutter.package_name }}.model.network import model_data_config

    from .conftest import TINY_MODEL

    config = model_data_config(timm.create_model(TINY_MODEL, num_classes=2), 64)
    side = cache_side(64, config["crop_pct"])  # the squares the DataLoader hands out
    picture, count = coordinates(side), 2000
    torch.manual_seed(0)
    reference = torch.stack([build_transforms(config, training=True)(picture) for _ in range(count)])
    augment = train_augmentation(config, jitter=0.0)  # colours off: they carry the coordinates here
    batch = torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).expand(500, -1, -1, -1)
    device = torch.cat([(augment(batch.float() / 255) * 255).round().clamp(0, 255) for _ in range(count // 500)])
    assert device.shape == reference.shape == (count, 3, 64, 64)

    ours, timms = crop_geometry(device, side), crop_geometry(reference, side)
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    assert 0.72 < ours["scale"].min() and ours["scale"].max() < 1.01  # 75-100%, give or take a rounded pixel
    assert np.quantile(ours["scale"], quantiles) == pytest.approx(np.quantile(timms["scale"], quantiles), abs=0.015)
    assert 0.72 < ours["aspect"].min() and ours["aspect"].max() < 1.38
    log_ours, log_timms = np.log(ours["aspect"]), np.log(timms["aspect"])
    assert np.quantile(log_ours, quantiles) == pytest.approx(np.quantile(log_timms, quantiles), abs=0.03)
    assert log_ours.std() > 0.05  # crops really vary from image to image within the batch
    assert 0.46 < ours["flipped"].mean() < 0.54 and 0.46 < timms["flipped"].mean() < 0.54

    # --no-flip (digits, text): the same crops, never mirrored.
    unmirrored = train_augmentation(config, jitter=0.0, flip=False)
    crops = torch.cat([(unmirrored(batch.float() / 255) * 255).round().clamp(0, 255) for _ in range(2)])
    assert not crop_geometry(crops, side)["flipped"].any()
    assert 0.72 < crop_geometry(crops, side)["scale"].min()


def test_colour_jitter_varies_per_image_within_its_strength() -> None:
    """Training batches get a random brightness per image within +-20%; evaluation batches are untouched."""
    torch.manual_seed(0)
    config = {"input_size": [3, 16, 16], "interpolation": "bilinear"}
    grey = torch.full((256, 3, 18, 18), 128, dtype=torch.uint8)  # flat grey: only brightness can change it
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    assert torch.equal(images_to_float(grey, mean, std), grey.float() / 255)
    jittered = images_to_float(grey, mean, std, augment=train_augmentation(config))
    assert jittered.shape == (256, 3, 16, 16)
    brightness = jittered.mean(dim=(1, 2, 3)) / (128 / 255)
    assert 0.79 < brightness.min() < 0.85 and 1.15 < brightness.max() < 1.21
    assert jittered.flatten(1).std(1).max() < 1e-3  # one factor per image, not per pixel


def test_evaluation_sees_the_whole_photo_edge_to_edge() -> None:
    """Validation, predict and export resize a square photo to the image size without cutting its
    border off (timm's ImageNet crop would drop the outer eighth): its corner pixels arrive intact."""
    config = model_data_config(timm.create_model(TINY_MODEL, num_classes=2), 64)
    pixels = np.zeros((96, 96, 3), np.uint8)
    pixels[:6, :6] = pixels[-6:, -6:] = 255  # white corners, 6 px of 96: 4 px at 64 px
    image = build_transforms(config, training=False)(Image.fromarray(pixels))
    assert image.shape == (3, 64, 64)
    assert image[:, 0, 0].min() > 200 and image[:, -1, -1].min() > 200 and image[:, 32, 32].max() == 0
