"""Balancing uneven classes: how uneven, the loss weights, the sampler, and what --balance auto chooses."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.dataset.balance import choose_balance, class_weights, imbalance_ratio
from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
from {{ cookiecutter.package_name }}.dataset.image_dataset import balanced_sampler

from ..conftest import draw_image


def test_imbalance_ratio_and_class_weights() -> None:
    """15:1 classes: weights are inversely proportional to size, averaging 1; empty classes weigh 0."""
    assert imbalance_ratio([150, 10]) == 15.0 and imbalance_ratio([10, 10, 0]) == 1.0
    weights = class_weights([150, 10])
    assert weights[1] / weights[0] == pytest.approx(15.0) and sum(weights) / 2 == pytest.approx(1.0)
    assert class_weights([5, 0, 5]) == [1.0, 0.0, 1.0]


def test_balanced_sampler_draws_rare_classes_as_often_as_common_ones() -> None:
    from {{ cookiecutter.package_name }}.dataset.folders import Sample

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
    uneven = find_dataset(write_classes(tmp_path / "uneven", {"cat": 60, "dog": 4}))
    weights, sampler, chosen = choose_balance("auto", uneven)
    assert chosen == "weighted-loss" and not sampler and weights[1] > weights[0]
    even = find_dataset(write_classes(tmp_path / "even", {"cat": 10, "dog": 9}))
    assert choose_balance("auto", even) == (None, False, "none")
    assert choose_balance("sampler", uneven) == (None, True, "sampler")
