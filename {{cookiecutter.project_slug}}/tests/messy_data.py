"""A dataset folder with every kind of bad input at once, like a beginner's real photo folder.

``make_messy_folder`` returns what a correct audit must find, so the tests can check each item.
"""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pillow_heif import register_heif_opener

register_heif_opener()  # the messy folder has an iPhone photo too


def photo(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A photo-like picture: smooth random colours and a few shapes; different seeds look different."""
    rng = random.Random(seed)
    grid = np.array([[[rng.randrange(256) for _ in range(3)] for _ in range(4)] for _ in range(3)], dtype=np.uint8)
    image = Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(6, 24)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def save_photos(folder: Path, prefix: str, count: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}_{i:03d}.jpg"
        photo(seed * 1000 + i).save(path, quality=90)
        paths.append(path)
    return paths


def make_messy_folder(root: Path) -> dict[str, list[str]]:
    """train/{cat,dog,fox,empty,only_hidden} + val/{cat,dog,fox}, full of trouble. Returns findings by kind."""
    train, val = root / "train", root / "val"
    cats = save_photos(train / "cat", "cat", 12, seed=1)
    save_photos(train / "dog", "dog", 12, seed=2)
    foxes = save_photos(train / "fox", "fox", 12, seed=3)
    for offset, name in enumerate(("cat", "dog", "fox")):
        save_photos(val / name, f"val_{name}", 3, seed=10 + offset)

    # Modes that load fine but are worth knowing.
    rotated = photo(101)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    rotated.save(train / "cat" / "IMG_0001.JPG", exif=exif)  # upper-case extension too
    rgba = photo(102).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(train / "cat" / "screenshot.png")
    photo(103).convert("P", palette=Image.Palette.ADAPTIVE).save(train / "cat" / "palette.gif")
    photo(104).convert("CMYK").save(train / "cat" / "print.jpg")
    grey16 = (np.asarray(photo(105).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(train / "cat" / "scan16.png")
    photo(106).convert("L").save(train / "cat" / "grey.jpg")
    nested = train / "cat" / "2019 holiday" / "photo ü 1.jpeg"  # nested folder, spaces, unicode
    nested.parent.mkdir()
    photo(107).save(nested)
    photo(109).save(train / "cat" / "IMG_0004.HEIC", format="HEIF")  # a real iPhone-format photo: it loads

    # Files that cannot be used.
    good = (train / "dog" / "dog_000.jpg").read_bytes()
    (train / "dog" / "half.jpg").write_bytes(good[: len(good) // 2])  # a cut-off download
    (train / "dog" / "broken.jpg").write_bytes(good[:4] + bytes(2000))  # JPEG start, destroyed header
    (train / "dog" / "notes.jpg").write_text("this is a text file, not a photo\n")
    (train / "dog" / "error.png").write_text("<html><body>404 Not Found</body></html>")
    (train / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (train / "dog" / "readme.txt").write_text("photos of my dog")
    (train / "dog" / "IMG_0003.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(100))  # a damaged one
    (train / "dog" / "poster.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # never decoded
    photo(108, size=(16, 16)).save(train / "dog" / "tiny.png")

    # Same photo twice: in two classes, in train and val, and resized within a class.
    shutil.copy(cats[0], train / "dog" / "copied_cat.jpg")
    shutil.copy(foxes[1], val / "fox" / "leaked.jpg")
    Image.open(foxes[2]).resize((64, 48)).save(train / "fox" / "fox_002_small.jpg", quality=80)

    # Classes with nothing to learn from.
    (train / "empty").mkdir()
    (train / "only_hidden").mkdir()
    (train / "only_hidden" / "._IMG_0002.jpg").write_bytes(b"\x00\x05\x16\x07")

    return {
        "corrupt": ["train/dog/IMG_0003.HEIC", "train/dog/broken.jpg"],
        "truncated": ["train/dog/half.jpg"],
        "not an image": ["train/dog/error.png", "train/dog/notes.jpg", "train/dog/poster.jpg"],
        "hidden files": ["train/dog/.DS_Store", "train/only_hidden/._IMG_0002.jpg"],
        "non-image files": ["train/dog/readme.txt"],
        "tiny images": ["train/dog/tiny.png"],
        "empty classes": ["train/empty", "train/only_hidden"],
        "exact duplicates across classes": ["train/cat/cat_000.jpg", "train/dog/copied_cat.jpg"],
        "exact duplicates across splits": ["train/fox/fox_001.jpg", "val/fox/leaked.jpg"],
        "near duplicates within a class": ["train/fox/fox_002.jpg", "train/fox/fox_002_small.jpg"],
        "modes": ["grayscale", "alpha", "palette", "CMYK", "16-bit", "EXIF-rotated"],
    }


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()
