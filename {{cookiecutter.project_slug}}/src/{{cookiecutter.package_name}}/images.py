"""Open any photo a beginner might have as a correct RGB picture.

Phones store rotation in EXIF tags, screenshots have transparency, scanners write 16-bit or CMYK
files. ``load_rgb`` turns all of them into plain 8-bit RGB the way a person would expect to see them.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

# Extensions we treat as images, compared in lowercase so IMG_001.JPG counts too.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Transparent pixels become this neutral grey rather than black, which would look like a real colour.
BACKGROUND = (124, 116, 104)


def is_hidden(path: Path) -> bool:
    """Files like .DS_Store or ._IMG_001.jpg that the operating system leaves behind."""
    return path.name.startswith(".")


def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension is an image format we read."""
    return path.is_file() and not is_hidden(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(path: str | Path, min_size: int | None = None) -> Image.Image:
    """Decode ``path`` fully into an upright 8-bit RGB image.

    ``min_size``: when given, large JPEGs are decoded at a reduced scale (Pillow's draft mode) that
    still leaves both sides at least this many pixels, which is several times faster for phone photos.
    """
    with Image.open(path) as image:
        if min_size and image.format == "JPEG":
            image.draft("RGB", (min_size, min_size))
        image.load()
        image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha over a neutral background, 16-bit scaled to 8-bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) greyscale: scale the full range down to 0..255, not clip it.
        high = 65535 if image.mode.startswith("I;16") else max(image.getextrema()[1], 1)
        image = image.point(lambda value: value * (255 / high)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
