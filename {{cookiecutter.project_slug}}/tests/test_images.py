"""Opening photos: every mode becomes correct, upright RGB; bad files are described, never raised."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package_name }}.images import (
    BACKGROUND,
    difference_hash,
    inspect_image,
    is_hidden,
    is_image_file,
    load_rgb,
)

from .messy_data import photo


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_exif_rotated_photo_is_turned_upright(tmp_path: Path) -> None:
    """A phone photo stored sideways (EXIF orientation 6) comes out rotated, as the phone shows it."""
    image = Image.new("RGB", (60, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 40))  # a red stripe on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = tmp_path / "IMG_0001.JPG"
    image.save(path, exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.size == (40, 60)
    top_row = np.asarray(upright)[2, 5:35]  # the stored left edge is now at the top
    assert top_row[:, 0].mean() > 200 and top_row[:, 2].mean() < 60


def test_transparent_pixels_become_the_neutral_background(tmp_path: Path) -> None:
    """Alpha is composited on grey, not dropped (which would reveal whatever colour hides under it)."""
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (255, 0, 0, 255))  # one opaque red pixel
    rgba.save(tmp_path / "shot.png")
    rgb = load_rgb(tmp_path / "shot.png")
    assert rgb.mode == "RGB"
    assert rgb.getpixel((5, 5)) == BACKGROUND
    assert rgb.getpixel((0, 0)) == (255, 0, 0)


def test_palette_image_with_transparency_is_composited(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    image.save(tmp_path / "sticker.gif", transparency=0)
    assert load_rgb(tmp_path / "sticker.gif").getpixel((1, 1)) == BACKGROUND


def test_cmyk_becomes_the_right_colours(tmp_path: Path) -> None:
    """A print-shop CMYK JPEG: pure magenta+yellow ink must come out red, not a colour salad."""
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=95)
    red, green, blue = load_rgb(tmp_path / "print.jpg").getpixel((8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    """Mid-grey in a 16-bit scan (32768 of 65535) is mid-grey in 8 bits, not white."""
    values = np.array([[0, 32768], [65535, 16384]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "scan16.png")
    grey = np.asarray(load_rgb(tmp_path / "scan16.png"))[..., 0]
    assert grey.tolist() == [[0, 128], [255, 64]]


def test_float_and_32_bit_greyscale_are_scaled(tmp_path: Path) -> None:
    floats = Image.fromarray(np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32), mode="F")
    floats.save(tmp_path / "depth.tif")
    assert np.asarray(load_rgb(tmp_path / "depth.tif"))[..., 0].tolist() == [[0, 128], [255, 64]]
    ints = Image.fromarray(np.array([[0, 1000], [65535, 300]], dtype=np.int32), mode="I")
    ints.save(tmp_path / "int32.tif")
    assert np.asarray(load_rgb(tmp_path / "int32.tif"))[0, 1, 0] == 4  # 1000/65535*255, a 16-bit range


def test_big_jpeg_is_decoded_at_reduced_size_when_the_target_is_small(tmp_path: Path) -> None:
    """Draft mode: a 2000x1500 photo for 224 px training is decoded at 1/4 scale, never below 224."""
    (tmp_path / "big.jpg").write_bytes(jpeg_bytes(photo(1, (2000, 1500))))
    small = load_rgb(tmp_path / "big.jpg", min_size=224)
    assert min(small.size) >= 224 and small.size[0] <= 500
    assert load_rgb(tmp_path / "big.jpg").size == (2000, 1500)


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


def test_hidden_and_system_files_are_recognised(tmp_path: Path) -> None:
    for name in (".DS_Store", "._IMG_1.jpg", "Thumbs.db", "__MACOSX"):
        assert is_hidden(tmp_path / name)
    (tmp_path / "IMG_1.JPEG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    assert is_image_file(tmp_path / "IMG_1.JPEG") and not is_image_file(tmp_path / "notes.txt")


def test_a_picture_bigger_than_pillow_decodes_is_too_large_not_corrupt(tmp_path: Path) -> None:
    """A 240-megapixel panorama is valid, only huge: its size, Pillow's limit and the fix, not 'corrupt'."""
    from .bad_uploads import flat_png

    (tmp_path / "panorama.png").write_bytes(flat_png(20000, 12000))
    check = inspect_image(str(tmp_path / "panorama.png"))
    assert check.problem == "too large"
    assert "240 megapixels" in check.reason and "179 megapixels" in check.reason and "downscale" in check.reason
