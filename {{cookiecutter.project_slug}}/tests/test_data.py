"""Finding the images: classes, splits, what is left out and why, and balancing uneven classes."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.data import (
    balanced_sampler,
    build_transforms,
    class_weights,
    images_to_float,
    train_augmentation,
)
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.folders import find_dataset, imbalance_ratio

from .conftest import draw_image, make_image_folder, run_cli
from .messy_data import make_messy_folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("messy") / "pets"
    return root, make_messy_folder(root)


def relative(paths, root: Path) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


def test_unreadable_files_are_left_out_and_listed_with_a_reason(messy) -> None:
    """With check_images (what train does), nothing that fails to decode reaches a DataLoader."""
    root, expected = messy
    splits = find_dataset(root, check_images=True)
    used = relative([s.path for s in splits.train + splits.val + splits.test], root)
    bad = set(expected["corrupt"] + expected["truncated"] + expected["not an image"])
    assert not used & bad
    reasons = {path.relative_to(root).as_posix(): why for path, why in splits.skipped_files.items()}
    assert {path for path, why in reasons.items() if why.startswith("unreadable")} == bad
    assert reasons["train/dog/half.jpg"].startswith("unreadable: truncated")
    assert reasons["train/dog/.DS_Store"] == "hidden" and reasons["train/dog/readme.txt"] == "not an image"
    assert splits.skipped["unreadable"] == 4 and splits.skipped["hidden"] == 2


def test_without_the_check_bad_files_would_reach_training(messy) -> None:
    """The check is what keeps them out: a plain scan only sees names, so the test above can fail."""
    root, expected = messy
    splits = find_dataset(root)
    used = relative([s.path for s in splits.train], root)
    assert "train/dog/half.jpg" in used


def test_empty_class_folders_are_skipped_and_named(messy) -> None:
    root, _ = messy
    splits = find_dataset(root, check_images=True)
    assert splits.classes == ["cat", "dog", "fox"]
    assert splits.empty_classes == ["empty", "only_hidden"]


def test_nested_folders_unicode_and_upper_case_extensions_are_found(messy) -> None:
    root, _ = messy
    used = relative([s.path for s in find_dataset(root, check_images=True).train], root)
    assert {"train/cat/2019 holiday/photo ü 1.jpeg", "train/cat/IMG_0001.JPG"} <= used


def test_val_folder_is_used_as_is_and_never_mixed_with_train(messy) -> None:
    root, _ = messy
    splits = find_dataset(root, check_images=True)
    assert not splits.val_was_made
    assert {s.path.parts[-3] for s in splits.val} == {"val"}
    assert {s.path.relative_to(root).parts[0] for s in splits.train} == {"train"}


def test_split_folders_are_matched_in_any_case_and_common_names(tmp_path: Path) -> None:
    """Train/ and valid/ (as some dataset exporters write them) are the train and val splits."""
    make_image_folder(tmp_path, per_class=3, classes=("cat", "dog"), splits=("Train", "valid"))
    splits = find_dataset(tmp_path)
    assert splits.classes == ["cat", "dog"] and not splits.val_was_made and len(splits.val) == 6


def test_val_and_test_next_to_class_folders_are_splits_not_classes(tmp_path: Path) -> None:
    make_image_folder(tmp_path, per_class=4, classes=("cat", "dog"))
    for name in ("cat", "dog"):
        shutil.move(tmp_path / "train" / name, tmp_path / name)
    (tmp_path / "train").rmdir()
    make_image_folder(tmp_path, per_class=2, classes=("cat", "dog"), splits=("val",))
    splits = find_dataset(tmp_path)
    assert splits.classes == ["cat", "dog"] and len(splits.val) == 4 and len(splits.train) == 8


def test_a_class_with_an_empty_training_folder_does_not_break_val(tmp_path: Path) -> None:
    """val/fox with images but train/fox empty: fox is skipped with the other empty classes, no error."""
    make_image_folder(tmp_path, per_class=4, classes=("cat", "dog", "fox"), splits=("train", "val"))
    shutil.rmtree(tmp_path / "train" / "fox")
    (tmp_path / "train" / "fox").mkdir()
    splits = find_dataset(tmp_path)
    assert splits.classes == ["cat", "dog"] and splits.empty_classes == ["fox"]
    assert splits.skipped["class has no training images"] == 4


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: make_image_folder(root, per_class=3, classes=("cat",)), "at least 2"),
        (lambda root: (root / "train" / "cat").mkdir(parents=True) or (root / "train" / "dog").mkdir(), "at least 2"),
        (lambda root: make_image_folder(root, per_class=3, classes=("cat", "dog"), splits=("train", "val"))
         and make_image_folder(root, per_class=1, classes=("fox",), splits=("val",)), "not in"),
    ],
    ids=["missing", "empty", "one-class", "classes-without-images", "val-class-not-in-train"],
)
def test_datasets_that_cannot_be_trained_on_fail_in_one_line(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "pets"
    build(root)
    with pytest.raises(UserError, match=message) as error:
        find_dataset(root)
    assert "\n" not in str(error.value)


def test_data_pointing_at_a_class_folder_is_recognised(tmp_path: Path) -> None:
    """--data data/pets/train/cat instead of data/pets: say so, and what to pass instead."""
    root = make_image_folder(tmp_path / "pets", per_class=3, classes=("cat", "dog"))
    with pytest.raises(UserError, match="parent folder"):
        find_dataset(root / "train" / "cat")
    (root / "train" / "cat" / "2019").mkdir()  # a class folder with a subfolder of more photos
    draw_image(root / "train" / "cat" / "2019" / "a.png", "cat", seed=1)
    with pytest.raises(UserError, match="looks like a class folder"):
        find_dataset(root / "train" / "cat")


def test_train_on_a_class_folder_exits_1_with_one_line(tmp_path: Path, capsys) -> None:
    root = make_image_folder(tmp_path / "pets", per_class=3, classes=("cat", "dog"))
    assert run_cli("train", "--data", str(root / "train" / "cat"), "--output", str(tmp_path / "runs")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error:") and "parent folder" in err and len(err.splitlines()) == 1


def test_imbalance_ratio_and_class_weights() -> None:
    """15:1 classes: weights are inversely proportional to size, averaging 1; empty classes weigh 0."""
    assert imbalance_ratio([150, 10]) == 15.0 and imbalance_ratio([10, 10, 0]) == 1.0
    weights = class_weights([150, 10])
    assert weights[1] / weights[0] == pytest.approx(15.0) and sum(weights) / 2 == pytest.approx(1.0)
    assert class_weights([5, 0, 5]) == [1.0, 0.0, 1.0]


def test_balanced_sampler_draws_rare_classes_as_often_as_common_ones() -> None:
    from {{ cookiecutter.package_name }}.folders import Sample

    samples = [Sample(Path(f"{i}.jpg"), 0) for i in range(150)] + [Sample(Path(f"r{i}.jpg"), 1) for i in range(10)]
    torch.manual_seed(0)
    drawn = Counter(samples[i].label for i in balanced_sampler(samples))
    assert sum(drawn.values()) == len(samples)
    assert 0.4 < drawn[1] / len(samples) < 0.6  # about half, not 1 in 16


def write_classes(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        for i in range(count):
            draw_image(root / "train" / name / f"{name}_{i:03d}.png", name, seed=f"{name}/{i}")
    return root


def test_train_says_when_it_weights_the_loss_for_uneven_classes(tmp_path: Path) -> None:
    """--balance auto turns on the weighted loss above 3:1 and stays off for balanced classes."""
    from {{ cookiecutter.package_name }}.train import choose_balance

    uneven = find_dataset(write_classes(tmp_path / "uneven", {"cat": 60, "dog": 4}))
    weights, sampler, chosen = choose_balance("auto", uneven)
    assert chosen == "weighted-loss" and not sampler and weights[1] > weights[0]
    even = find_dataset(write_classes(tmp_path / "even", {"cat": 10, "dog": 9}))
    assert choose_balance("auto", even) == (None, False, "none")
    assert choose_balance("sampler", uneven) == (None, True, "sampler")


def test_weighted_loss_counts_mistakes_on_rare_classes_more() -> None:
    """The class weights reach the training loss: the same batch gives cross-entropy with those weights."""
    import timm
    import torch.nn.functional as F

    from {{ cookiecutter.package_name }}.model import Classifier, model_data_config

    from .conftest import TINY_MODEL

    network = timm.create_model(TINY_MODEL, pretrained=False, num_classes=2)
    config = model_data_config(network, 32)
    model = Classifier(network, TINY_MODEL, ["cat", "dog"], config, class_weights=[0.2, 1.8], label_smoothing=0.0)
    model.eval()
    images, labels = torch.randn(6, 3, 32, 32), torch.tensor([0, 0, 0, 0, 1, 1])
    with torch.no_grad():
        loss = model.training_step((images, labels, torch.arange(6)), 0)
        logits = model(images)
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([0.2, 1.8]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() != pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-3)


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

    from {{ cookiecutter.package_name }}.cache import cache_side
    from {{ cookiecutter.package_name }}.model import model_data_config

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
