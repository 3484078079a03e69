"""Opening photos: every mode becomes correct, upright RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from {{ cookiecutter.package_name }}.dataset.decode import BACKGROUND, load_rgb

from ..messy_data import jpeg_bytes, photo


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
