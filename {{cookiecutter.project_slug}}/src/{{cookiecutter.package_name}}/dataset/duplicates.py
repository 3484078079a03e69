"""The same photo twice: identical files, or the same picture resized or re-saved, and what it means
where the copies sit (in one class, in two classes, in train and val).

Exact copies have the same content hash; near copies close perceptual hashes (inspection.py), confirmed
by close 8x8 thumbnails.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from {{ cookiecutter.package_name }}.dataset.folders import relative_to_root
from {{ cookiecutter.package_name }}.dataset.inspection import ImageCheck
from {{ cookiecutter.package_name }}.dataset.problems import Problem

# Two files are the same picture when their perceptual hashes differ in at most NEAR_BITS of 64 bits
# and their 8x8 colour thumbnails by at most NEAR_PIXELS grey levels (mean, 0..255). Calibrated so that
# a photo halved, doubled, cropped by 2% or re-saved as JPEG (quality 70) is caught, while none of the
# 64,620 pairs of the look-alike drawings in tests/conftest.py is (similar is not the same).
NEAR_BITS = 5
NEAR_PIXELS = 4.0


def duplicate_problems(good: list[ImageCheck], where: dict[str, tuple[str, str]], root: Path,
                        val_is_made: bool = False) -> list[Problem]:
    """Exact copies (same bytes) and near copies (same picture resized or re-saved), by where they sit."""
    problems = []
    exact = defaultdict(list)
    for check in good:
        exact[check.sha1].append(check.path)
    exact_groups = [sorted(paths) for paths in exact.values() if len(paths) > 1]
    problems += _classify_groups(exact_groups, where, root, "exact duplicates", "identical files", val_is_made)

    # Near copies: compare one file per distinct content, then drop groups that are all one content.
    unique = [paths[0] for paths in exact.values()]
    first = {c.path: c for c in good}
    near_groups = []
    for group in near_duplicate_groups([first[p] for p in unique]):
        members = sorted(p for representative in group for p in exact[first[representative].sha1])
        near_groups.append(members)
    problems += _classify_groups(near_groups, where, root, "near duplicates",
                                 "near-identical pictures (resized, re-saved or lightly edited copies)", val_is_made)
    return problems


def _classify_groups(groups: list[list[str]], where: dict[str, tuple[str, str]], root: Path,
                     name: str, what: str, val_is_made: bool) -> list[Problem]:
    """Split duplicate groups by what they mean: in one class, in several classes, in several splits."""
    leak = "; the val split that train makes may put one copy in val" if val_is_made else ""
    kinds = {
        "within a class": ([], "info", f"in the same class (they count twice{leak})"),
        "across classes": ([], "warning", "in different classes: which label is right? (label conflict; "
                                          "after training, `{{ cookiecutter.project_slug }} review runs/<name>` "
                                          "lists them to move or remove)"),
        "across splits": ([], "warning", "in both train and val/test: the score would be measured on "
                                         "photos the model trained on (leakage)"),
    }
    for group in groups:
        splits = {where[p][0] for p in group}
        labels = {where[p][1] for p in group}
        same_place = len(group) > len({where[p] for p in group})
        if len(labels) > 1:
            kinds["across classes"][0].append(group)
        if len(splits) > 1:
            kinds["across splits"][0].append(group)
        if same_place or (len(labels) == 1 and len(splits) == 1):
            kinds["within a class"][0].append(group)
    problems = []
    for kind, (found, severity, meaning) in kinds.items():
        if found:
            relative = [[relative_to_root(p, root) for p in group] for group in found]
            problems.append(Problem(
                f"{name} {kind}", severity, f"Duplicates: {len(found)} group(s) of {what} {meaning}.",
                [p for group in relative for p in group], groups=relative,
            ))
    return problems


def _popcount(values: np.ndarray) -> np.ndarray:
    """Number of 1 bits in each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[values.view(np.uint8)].reshape(*values.shape, 8).sum(-1)


def near_duplicate_groups(checks: list[ImageCheck], max_bits: int = NEAR_BITS,
                          max_pixels: float = NEAR_PIXELS) -> list[list[str]]:
    """Groups of paths whose pictures look the same: close hashes, confirmed by close thumbnails.

    Every pair is compared (n^2/2 64-bit comparisons, vectorised: about a second for 20,000 images).
    """
    n = len(checks)
    if n < 2:
        return []
    hashes = np.array([c.dhash for c in checks], dtype=np.uint64)
    thumbnails = np.frombuffer(b"".join(c.thumbnail for c in checks), dtype=np.uint8).reshape(n, -1).astype(np.int16)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = 256
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        distance = _popcount(hashes[start:stop, None] ^ hashes[None, start:])
        i, j = np.nonzero(distance <= max_bits)
        i, j = i + start, j + start
        keep = j > i
        i, j = i[keep], j[keep]
        for begin in range(0, len(i), 100_000):  # bounded memory when many images look alike
            a, b = i[begin:begin + 100_000], j[begin:begin + 100_000]
            close = np.abs(thumbnails[a] - thumbnails[b]).mean(axis=1) <= max_pixels
            for x, y in zip(a[close].tolist(), b[close].tolist(), strict=True):
                parent[find(x)] = find(y)
    groups = defaultdict(list)
    for index in range(n):
        groups[find(index)].append(checks[index].path)
    return [sorted(group) for group in groups.values() if len(group) > 1]
