"""Say plainly why a file cannot be read: ``inspect_image`` decodes one file completely and describes it.

Downloads get cut off half way, text files get renamed .jpg, panoramas are bigger than Pillow will
decode. ``inspect_image`` is what ``check-data`` (and ``train``, before it starts) runs on every file to
find the ones that cannot be read, and the hashes it computes find the same photo twice.

Like decode.py it imports only Pillow and numpy: it runs in worker processes (see parallel.py).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from {{ cookiecutter.package_name }}.dataset.decode import PHOTO_FORMATS, decode

# Size of the thumbnail behind the perceptual hash (a difference hash: 8 rows of 9 pixels -> 64 bits).
HASH_SIZE = 8
# A valid picture with more pixels than Pillow decodes (its guard against decompression bombs).
TOO_LARGE = "too large"


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
        with warnings.catch_warnings(), Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning for a 100-megapixel panorama
            check.format = image.format or ""
            check.width, check.height = image.size
            check.notes = _notes(image)
            # The hash needs only a small picture; JPEG draft mode makes that much faster while still
            # decoding every block of the file, so a cut-off or damaged file fails here all the same.
            rgb = decode(image, 64 if hashes else 32)
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


def too_large_reason(pillow_message: str) -> str:
    """'240 megapixels; Pillow decodes at most 179 ...' from Pillow's DecompressionBombError message."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+) pixels", pillow_message)
    size, limit = (f"{int(n) / 1e6:.0f} megapixels" for n in found.groups()) if found else ("too many pixels", "")
    return (f"{size}; Pillow decodes at most {limit or 'its limit'} (a guard against decompression bombs). "
            "To use it, downscale it (for example to 4000 pixels on the long side)")


# How the common image formats begin: a file that starts like one but does not open is damaged.
MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
         b"MM\x00*": "TIFF", b"RIFF": "WebP", b"%!PS": "PostScript (EPS)"}


def _unidentified(data: bytes) -> tuple[str, str]:
    """(problem, reason) for a file Pillow cannot identify: empty, damaged image, or another kind of file."""
    if not data:
        return "corrupt", "the file is empty (0 bytes)"
    for magic, name in MAGIC.items():
        if data.startswith(magic) and name == "PostScript (EPS)":
            return "not an image", "a PostScript/EPS file, which is not read (export it as PNG or JPEG)"
        if data.startswith(magic):
            return "corrupt", f"starts like a {name} but its header is damaged"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "corrupt", "starts like a HEIC/AVIF photo but cannot be decoded"
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
