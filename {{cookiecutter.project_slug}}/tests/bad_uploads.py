"""Files people upload that a server must refuse politely, made in milliseconds and a few kilobytes.

A decompression bomb is a tiny file that claims a huge picture: written here row by row through
zlib, so making one never holds its pixels in memory either.
"""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=4)
def flat_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels, a few hundred KB even at 400 megapixels."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then one byte per pixel
    parts = [compressor.compress(row) for _ in range(height)]
    stream = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def photo_jpeg(width: int = 120, height: int = 90, progressive: bool = False) -> bytes:
    """A small real JPEG photo (a gradient with a disc)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, progressive=progressive)
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int, progressive: bool = False) -> bytes:
    """A small JPEG whose header says it is ``width`` x ``height``: what Pillow would decode if asked."""
    data = bytearray(photo_jpeg(progressive=progressive))
    marker = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[marker + 5:marker + 9] = struct.pack(">HH", height, width)  # after length (2) and precision (1)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    """The first half of a photo: the header is fine, the pixels stop (a half-finished download)."""
    data = photo_jpeg(400, 300)
    return data[: len(data) // 2]


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def eps_file() -> bytes:
    """An Encapsulated PostScript file: Pillow would hand it to Ghostscript, a server must not even try."""
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n0 0 moveto 100 100 lineto stroke\nshowpage\n"


def heic_photo(width: int = 160, height: int = 120) -> bytes:
    """A real HEIC photo (the iPhone's format), written by pillow-heif."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="HEIF", quality=90)
    return buffer.getvalue()


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode("ascii")


def gradio_payload(url: str) -> dict:
    """What Gradio's API takes for an image given inline: no uploaded file (empty path), a ``data:`` URL."""
    return {"path": "", "url": url, "meta": {"_type": "gradio.FileData"}}
