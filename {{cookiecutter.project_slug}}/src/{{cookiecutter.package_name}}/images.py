"""Open any photo a beginner might have as a correct RGB picture, or say plainly why it cannot be read.

Phones store rotation in EXIF tags, screenshots have transparency, scanners write 16-bit or CMYK
files, and downloads get cut off half way. ``load_rgb`` turns every readable file into plain 8-bit
RGB the way a person would expect to see it; ``inspect_image`` is what ``check-data`` (and ``train``,
before it starts) runs on every file to find the ones that cannot be read.

This module imports only Pillow and numpy, so the worker processes that check thousands of files
start in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Extensions we treat as images, compared in lowercase so IMG_001.JPG counts too.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Files and folders that operating systems and tools leave behind: never photos, never classes.
SYSTEM_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini", "__pycache__"}

# Transparent pixels become this neutral grey rather than black, which would look like a real colour.
BACKGROUND = (124, 116, 104)

# Size of the thumbnail behind the perceptual hash (a difference hash: 8 rows of 9 pixels -> 64 bits).
HASH_SIZE = 8


def is_hidden(path: Path) -> bool:
    """Files like .DS_Store, ._IMG_001.jpg or Thumbs.db that the operating system leaves behind."""
    return path.name.startswith(".") or path.name in SYSTEM_NAMES


def is_image_file(path: Path) -> bool:
    """True for a visible file whose extension is an image format we read."""
    return path.is_file() and not is_hidden(path) and path.suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(path: str | Path | BinaryIO, min_size: int | None = None) -> Image.Image:
    """Decode ``path`` (a file name, or an open binary file such as an upload) into an upright 8-bit RGB image.

    ``min_size``: when given, large JPEGs are decoded at a reduced scale (Pillow's draft mode) that
    still leaves both sides at least this many pixels, which is several times faster for phone photos.
    """
    with Image.open(path) as image:
        return _decode(image, min_size)


def _decode(image: Image.Image, min_size: int | None) -> Image.Image:
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
    means 16-bit. Floats in 0..1 are scaled to 0..255.
    """
    values = np.asarray(image, dtype=np.float64)
    high = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        full = 1.0 if high <= 1.0 else 255.0 if high <= 255 else max(high, 1.0)
    elif image.mode.startswith("I;16") or 255 < high <= 65535:
        full = 65535.0
    else:
        full = 255.0 if high <= 255 else max(high, 1.0)
    scaled = np.clip(np.round(values * (255.0 / full)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L") if scaled.ndim == 2 else Image.fromarray(scaled[..., 0], mode="L")


# ---- checking a file (check-data and the start of train) --------------------------------------------
@dataclass
class ImageCheck:
    """What checking one file found. ``problem`` is empty when the image decodes fine."""

    path: str
    problem: str = ""  # "", "not an image", "truncated", "corrupt" or "too large"
    reason: str = ""  # the decoder's own words, for the report
    width: int = 0
    height: int = 0
    format: str = ""
    notes: list[str] = field(default_factory=list)  # loads fine, worth knowing: "grayscale", "alpha", ...
    sha1: str = ""  # content hash: identical files have identical hashes
    dhash: int = 0  # perceptual hash: the same picture resized or re-saved has a nearly equal one
    thumbnail: bytes = b""  # 8x8 RGB: confirms that two files with close hashes really look alike


def inspect_image(path: str, hashes: bool = True) -> ImageCheck:
    """Decode ``path`` completely and describe it; never raises for a bad file.

    Runs in worker processes, so it takes and returns plain data. ``hashes=False`` is the fast path
    used by ``train``: it only finds the files that cannot be decoded.
    """
    check = ImageCheck(path=str(path))
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        check.problem, check.reason = "corrupt", f"cannot read the file ({err.strerror})"
        return check
    if hashes:
        check.sha1 = hashlib.sha1(data).hexdigest()
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning for a 100-megapixel panorama
            check.format = image.format or ""
            check.width, check.height = image.size
            check.notes = _notes(image)
            # The hash needs only a small picture; JPEG draft mode makes that much faster while still
            # decoding every block of the file, so a cut-off or damaged file fails here all the same.
            rgb = _decode(image, 64 if hashes else 32)
    except UnidentifiedImageError:
        check.problem, check.reason = _unidentified(data)
        return check
    except Image.DecompressionBombError as err:  # a valid picture, only bigger than Pillow will decode
        check.problem, check.reason = TOO_LARGE, too_large_reason(str(err))
        return check
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ... for bad data
        text = str(err) or type(err).__name__
        truncated = "truncated" in text.lower() or isinstance(err, EOFError) or "end of file" in text.lower()
        check.problem = "truncated" if truncated else "corrupt"
        check.reason = text.splitlines()[0][:200]
        return check
    if hashes:
        check.dhash = difference_hash(rgb)
        check.thumbnail = rgb.resize((8, 8), Image.Resampling.BOX).tobytes()
    return check


TOO_LARGE = "too large"


def too_large_reason(pillow_message: str) -> str:
    """'240 megapixels; Pillow decodes at most 179 ...' from Pillow's DecompressionBombError message."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", pillow_message)
    size, limit = (f"{int(n) / 1e6:.0f} megapixels" for n in found.groups()) if found else ("too many pixels", "")
    return (f"{size}; Pillow decodes at most {limit or 'its limit'} (a guard against decompression bombs). "
            "To use it, downscale it (for example to 4000 pixels on the long side)")


# How the common image formats begin: a file that starts like one but does not open is damaged.
MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
         b"MM\x00*": "TIFF", b"RIFF": "WebP"}


def _unidentified(data: bytes) -> tuple[str, str]:
    """(problem, reason) for a file Pillow cannot identify: empty, damaged image, or another kind of file."""
    if not data:
        return "corrupt", "the file is empty (0 bytes)"
    for magic, name in MAGIC.items():
        if data.startswith(magic):
            return "corrupt", f"starts like a {name} but its header is damaged"
    head = data[:512].lstrip()
    if head[:1] == b"<":
        return "not an image", "an HTML page or XML file (a failed download?)"
    printable = sum(32 <= byte < 127 or byte in (9, 10, 13) for byte in head)
    if head and printable > 0.9 * len(head):
        return "not an image", "a text file"
    return "not an image", "a format Pillow does not recognise"


def _notes(image: Image.Image) -> list[str]:
    """Properties that load fine but are worth knowing, read from the header before decoding."""
    notes = []
    mode = image.mode
    if mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append("grayscale")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        notes.append("alpha")
    if mode == "P":
        notes.append("palette")
    if mode == "CMYK":
        notes.append("CMYK")
    if mode.startswith("I;16") or mode == "I" or ";16" in _rawmode(image):
        notes.append("16-bit")
    try:
        if image.getexif().get(0x0112, 1) not in (1, None):  # 0x0112: the EXIF orientation tag
            notes.append("EXIF-rotated")
    except Exception:  # unreadable EXIF: the picture itself may still be fine
        pass
    return notes


def _rawmode(image: Image.Image) -> str:
    """How the file stores its pixels (e.g. "RGB;16B" for a 16-bit PNG that Pillow opens as 8-bit RGB)."""
    args = image.tile[0][3] if image.tile else ""
    return args if isinstance(args, str) else str(args[0]) if isinstance(args, tuple) and args else ""


def difference_hash(image: Image.Image, size: int = HASH_SIZE) -> int:
    """A 64-bit perceptual hash (dHash): is each pixel of a tiny greyscale copy brighter than its right neighbour?

    Resizing, re-compressing or slightly recolouring a photo changes few of these bits. Differences of
    at most 2 grey levels count as "equal", so flat areas give stable zeros instead of noise.
    """
    grey = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.BOX), dtype=np.int16)
    bits = (grey[:, :-1] - grey[:, 1:]) > 2
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")
