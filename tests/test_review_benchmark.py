"""benchmarks/review.py flips the labels it says it flips: only training photos, seeded, none lost."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import review  # noqa: E402

CLASSES = ("cat", "dog", "fox")


def tiny_dataset(root: Path, per_class: int = 10) -> Path:
    """Three classes of distinct small PNGs; every class uses the same file names, so moves clash."""
    for split, count in (("train", per_class), ("val", 2)):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.full((8, 8, 3), (c * 80, i * 20, 7 if split == "val" else 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i:04d}.png")
    return root


def contents(folder: Path) -> dict[str, str]:
    """Relative path -> hash of the bytes, for every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2])
def test_flips_exactly_the_fraction_of_train_into_wrong_classes_and_loses_nothing(tmp_path: Path,
                                                                                  fraction: float) -> None:
    data = tiny_dataset(tmp_path / "data")
    before_train, before_val = contents(data / "train"), contents(data / "val")
    flips = review.flip_labels(data, fraction, seed=3)

    assert len(flips) == round(fraction * 30)
    assert contents(data / "val") == before_val  # val is never touched
    after_train = contents(data / "train")
    assert sorted(after_train.values()) == sorted(before_train.values())  # same photos, none overwritten
    moved = set(after_train) - set(before_train)
    for flip in flips:
        folder, name = flip["path"].split("/")[1:]
        assert flip["given"] == folder != flip["true"]
        assert (data / flip["path"]).is_file()
        # The photo's bytes are the ones that were in its true class folder (same name, or a numbered one).
        original = f"{flip['true']}/{name.split('-')[0].removesuffix('.png')}.png"
        assert after_train[f"{folder}/{name}"] == before_train[original]
    assert {f["path"].removeprefix("train/") for f in flips} >= moved  # every new name is a flipped photo


def test_flipping_is_seeded(tmp_path: Path) -> None:
    flips = [review.flip_labels(tiny_dataset(tmp_path / f"d{i}"), 0.2, seed) for i, seed in enumerate((5, 5, 6))]
    assert flips[0] == flips[1]
    assert flips[0] != flips[2]


def test_applying_the_true_classes_undoes_the_flips(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data")
    before = sorted(contents(data).values())
    by_class = {c: sorted(v for k, v in contents(data / "train" / c).items()) for c in CLASSES}
    flips = review.flip_labels(data, 0.2, seed=0)
    review.apply_suggestions(data, [(f["path"], f["true"]) for f in flips])
    assert sorted(contents(data).values()) == before
    assert {c: sorted(contents(data / "train" / c).values()) for c in CLASSES} == by_class


def test_precision_and_recall_count_flipped_photos_among_the_top_k() -> None:
    paths = ["a", "b", "c", "d"]
    assert review.found(np.array([0, 2, 1, 3]), paths, {"a", "b"}, 2) == {"precision": 0.5, "recall": 0.5}
    assert review.found(np.array([1, 0, 2, 3]), paths, {"a", "b"}, 2) == {"precision": 1.0, "recall": 1.0}
