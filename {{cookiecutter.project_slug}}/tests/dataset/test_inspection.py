"""Inspecting files: bad files are described, never raised; good ones get their size, modes and hashes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from {{ cookiecutter.package_name }}.dataset.inspection import difference_hash, inspect_image

from ..messy_data import jpeg_bytes, photo


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "corrupt"),
        (b"just some notes\n", "not an image"),
        (b"<html><body>404</body></html>", "not an image"),
        (b"\xff\xd8\xff\xe0" + bytes(500), "corrupt"),
    ],
    ids=["empty", "text", "html", "damaged-header"],
)
def test_files_that_are_not_images_are_described(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    check = inspect_image(str(path))
    assert check.problem == problem and check.reason


def test_truncated_jpeg_is_found_by_decoding_not_by_the_header(tmp_path: Path) -> None:
    """Half a JPEG has a perfect header; only decoding every block finds that the rest is missing."""
    data = jpeg_bytes(photo(2, (300, 200)))
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with Image.open(tmp_path / "half.jpg") as image:
        assert image.size == (300, 200)  # the header alone looks fine
    check = inspect_image(str(tmp_path / "half.jpg"))
    assert check.problem == "truncated"
    for hashes in (True, False):  # the fast path used by train finds it too
        assert inspect_image(str(tmp_path / "half.jpg"), hashes=hashes).problem == "truncated"


def test_a_good_file_reports_size_modes_and_hashes(tmp_path: Path) -> None:
    rgba = photo(3, (64, 48)).convert("RGBA")
    rgba.save(tmp_path / "shot.png")
    check = inspect_image(str(tmp_path / "shot.png"))
    assert not check.problem
    assert (check.width, check.height, check.format) == (64, 48, "PNG")
    assert "alpha" in check.notes
    assert len(check.sha1) == 40 and len(check.thumbnail) == 8 * 8 * 3


def test_perceptual_hash_survives_resizing_but_tells_photos_apart() -> None:
    original = photo(4, (320, 240))
    resized = original.resize((160, 120))
    recompressed = Image.open(io.BytesIO(jpeg_bytes(original, quality=70)))
    other = photo(5, (320, 240))
    assert bin(difference_hash(original) ^ difference_hash(resized)).count("1") <= 3
    assert bin(difference_hash(original) ^ difference_hash(recompressed)).count("1") <= 3
    assert bin(difference_hash(original) ^ difference_hash(other)).count("1") > 10


def test_a_picture_bigger_than_pillow_decodes_is_too_large_not_corrupt(tmp_path: Path) -> None:
    """A 240-megapixel panorama is valid, only huge: its size, Pillow's limit and the fix, not 'corrupt'."""
    from ..bad_uploads import flat_png

    (tmp_path / "panorama.png").write_bytes(flat_png(20000, 12000))
    check = inspect_image(str(tmp_path / "panorama.png"))
    assert check.problem == "too large"
    assert "240 megapixels" in check.reason and "179 megapixels" in check.reason and "downscale" in check.reason
