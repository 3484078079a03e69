"""Open any photo a beginner might have as a correct RGB picture.

Phones store rotation in EXIF tags and iPhones save HEIC, screenshots have transparency, scanners
write 16-bit or CMYK files. ``load_rgb`` turns every readable file into plain 8-bit RGB the way a person would expect to
see it; training, predict, the demo and check-data all open photos with it.

Only the photo formats in ``PHOTO_FORMATS`` are ever decoded: Pillow knows others (EPS runs
Ghostscript, for one) that no photo needs and that untrusted files must not reach.

This module imports only Pillow, pillow-heif and numpy, so the worker processes that check thousands
of files start in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

register_heif_opener()  # HEIC/HEIF (iPhones); AVIF is built into Pillow's own wheels (11.3 and later)
Image.init()
# The formats photos come in. Anything else is "not an image" here, in check-data and in the demo.
PHOTO_FORMATS = tuple(name for name in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
                      if name in Image.OPEN)

# Transparent pixels become this neutral grey rather than black, which would look like a real colour.
BACKGROUND = (124, 116, 104)


def decode_size(data_config: dict[str, Any]) -> int:
    """Big JPEGs are decoded at about twice the model's input size: enough detail for random crops,
    several times faster than full size. predict and export use the same rule."""
    return 2 * data_config["input_size"][-1]


def load_rgb(path: str | Path | BinaryIO, min_size: int | None = None) -> Image.Image:
    """Decode ``path`` (a file name, or an open binary file such as an upload) into an upright 8-bit RGB image.

    ``min_size``: when given, large JPEGs are decoded at a reduced scale (Pillow's draft mode) that
    still leaves both sides at least this many pixels, which is several times faster for phone photos.
    """
    with Image.open(path, formats=PHOTO_FORMATS) as image:
        return decode(image, min_size)


def decode(image: Image.Image, min_size: int | None) -> Image.Image:
    """Draft (JPEG only), decode every pixel, turn upright, convert to RGB."""
    if min_size and image.format in ("JPEG", "MPO"):  # MPO: a JPEG with extra pictures (some phones)
        # The JPEG decoder can skip detail at 1/2, 1/4 or 1/8 scale; it still reads the whole file.
        image.draft("RGB", (min_size, min_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Corrupt EXIF data", "Palette images with transparency ..."
        image.load()
        # A broken EXIF block: keep the pixels as they are rather than lose the photo.
        with contextlib.suppress(Exception):
            image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha over a neutral background, 16-bit scaled to 8-bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8bit_grey(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "L" and "transparency" in image.info:  # greyscale PNG with one transparent level
        return to_rgb(image.convert("LA"))
    # CMYK (print files), YCbCr, 1-bit and greyscale: Pillow's own conversions are right for these.
    return image.convert("RGB")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale -> 8-bit, scaled by the format's range, not clipped.

    A 16-bit scan uses 0..65535; clipping it at 255 would make it almost all white. Pillow also opens
    some 16-bit PNGs as 32-bit mode "I", so the range is judged from the values: anything above 255
    means 16-bit. Floats in 0..1 are scaled to 0..255. The arithmetic is float32 and in place: a
    100-megapixel scan costs 400 MB once, not 800 MB twice.
    """
    values = np.array(image, dtype=np.float32)  # a copy of its own, written in place below
    high = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        full = 1.0 if high <= 1.0 else 255.0 if high <= 255 else max(high, 1.0)
    elif image.mode.startswith("I;16") or 255 < high <= 65535:
        full = 65535.0
    else:
        full = 255.0 if high <= 255 else max(high, 1.0)
    values *= np.float32(255.0 / full)
    scaled = np.clip(np.round(values, out=values), 0, 255, out=values).astype(np.uint8)
    return Image.fromarray(scaled, mode="L") if scaled.ndim == 2 else Image.fromarray(scaled[..., 0], mode="L")
