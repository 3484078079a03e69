"""Finding the images: classes, splits, what is left out and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
from {{ cookiecutter.package_name }}.errors import UserError

from ..conftest import draw_image, make_image_folder, run_cli
from ..messy_data import make_messy_folder


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
    assert splits.skipped["unreadable"] == 6 and splits.skipped["hidden"] == 2


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
    assert {"train/cat/2019 holiday/photo ü 1.jpeg", "train/cat/IMG_0001.JPG", "train/cat/IMG_0004.HEIC"} <= used


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
