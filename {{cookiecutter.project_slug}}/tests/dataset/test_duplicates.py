"""The same photo twice: a resized or re-saved copy is found, a merely similar photo is not."""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.package_name }}.dataset.duplicates import near_duplicate_groups
from {{ cookiecutter.package_name }}.dataset.inspection import inspect_image

from ..messy_data import save_photos


def test_near_duplicates_are_resized_copies_not_merely_similar_photos(tmp_path: Path) -> None:
    from PIL import Image

    original, other = save_photos(tmp_path, "p", 2, seed=7)
    Image.open(original).resize((48, 36)).save(tmp_path / "small.png")
    checks = [inspect_image(str(p)) for p in (original, other, tmp_path / "small.png")]
    assert near_duplicate_groups(checks) == [sorted([str(original), str(tmp_path / "small.png")])]
