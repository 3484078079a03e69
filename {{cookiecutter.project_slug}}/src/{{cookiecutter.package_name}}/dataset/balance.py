"""Uneven classes (say 300 cats and 20 dogs): how uneven, when that is worth handling, and what
``--balance`` does about it.

The one rule: the biggest class having more than ``IMBALANCE_LIMIT`` times the training images of the
smallest is worth handling. check-data warns about it, ``train --balance auto`` weights the loss, and
report.md suggests adding photos, all through ``class_balance`` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from {{ cookiecutter.package_name }}.dataset.folders import DatasetSplits

# Edit here: biggest class / smallest class above this is worth handling.
IMBALANCE_LIMIT = 3.0


@dataclass
class Balance:
    """How uneven the training images are across classes (classes without images left out)."""

    ratio: float  # images in the biggest class / images in the smallest (1.0 = perfectly balanced)
    largest: str | None
    smallest: str | None
    imbalanced: bool  # ratio above IMBALANCE_LIMIT


def imbalance_ratio(counts: list[int]) -> float:
    """Images in the biggest class / images in the smallest (1.0 = perfectly balanced)."""
    counts = [count for count in counts if count > 0]
    return max(counts) / min(counts) if counts else 1.0


def class_balance(classes: list[str], counts: list[int]) -> Balance:
    """The biggest and smallest class, their ratio, and whether it is worth handling."""
    present = {name: count for name, count in zip(classes, counts, strict=True) if count > 0}
    if not present:
        return Balance(1.0, None, None, False)
    ratio = imbalance_ratio(list(present.values()))
    return Balance(ratio, max(present, key=present.get), min(present, key=present.get), ratio > IMBALANCE_LIMIT)


def class_weights(counts: list[int]) -> list[float]:
    """Loss weight per class, inversely proportional to its number of training images (mean weight 1).

    With these weights a mistake on a rare class costs as much, in total, as one on a common class.
    """
    present = [count for count in counts if count > 0]
    return [len(present) * (1 / count) / sum(1 / c for c in present) if count else 0.0 for count in counts]


def choose_balance(balance: str, splits: DatasetSplits,
                   say: Callable[[str], object] = print) -> tuple[list[float] | None, bool, str]:
    """Resolve --balance into (loss weights or None, balanced sampling?, what was chosen), and ``say`` it.

    ``auto`` weights the loss when the classes are uneven (see ``IMBALANCE_LIMIT``): otherwise the
    model learns that guessing the big class is usually right.
    """
    counts = splits.train_counts()
    found = class_balance(splits.classes, counts)
    uneven = f"{found.largest} has {found.ratio:.1f}x the training images of {found.smallest}"
    if balance == "auto":
        balance = "weighted-loss" if found.imbalanced else "none"
        if balance == "weighted-loss":
            say(f"Balance: classes are uneven ({uneven}), so the training loss weights each class by "
                "1/its size (--balance auto; --balance none turns it off).")
    elif balance == "weighted-loss":
        say(f"Balance: the training loss weights each class by 1/its size ({uneven}).")
    elif balance == "sampler":
        say(f"Balance: training batches draw every class equally often ({uneven}).")
    elif found.imbalanced:
        say(f"Balance: none, although classes are uneven ({uneven}).")
    weights = class_weights(counts) if balance == "weighted-loss" else None
    return weights, balance == "sampler", balance
