"""Write real, small image datasets to disk without downloading anything.

``digits``: scikit-learn's 1,797 handwritten digits (8x8 scans that ship inside the installed
scikit-learn package), upscaled and written as PNG files in the class-per-folder convention:
``OUT/train/<digit>/*.png``. Used by ``make quickstart`` and the benchmarks.
The benchmarks' other datasets are further down: the recipe benchmark's five (``RECIPE_DATASETS``)
and a folder the size of Oxford-IIIT Pet (``write_pets_sized``).

    python tools/sample_data.py digits data/digits [--size 32] [--per-class N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_digits(out: Path, size: int = 32, per_class: int | None = None) -> Path:
    """Write the digits as RGB PNGs, one folder per class; returns ``out``. Re-running is a no-op."""
    from sklearn.datasets import load_digits

    out = Path(out)
    marker = out / ".complete"
    if marker.exists():
        return out
    from concurrent.futures import ThreadPoolExecutor

    digits = load_digits()
    written: dict[int, int] = {}
    jobs = []
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = int(label)
        if per_class is not None and written.get(label, 0) >= per_class:
            continue
        written[label] = written.get(label, 0) + 1
        folder = out / "train" / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((pixels, folder / f"{index:04d}.png"))

    def write(job) -> None:
        pixels, path = job
        # 0..16 ink values -> dark ink on white paper, like a real scan.
        grey = (255 - pixels * (255 / 16)).astype(np.uint8)
        Image.fromarray(grey).resize((size, size), Image.BILINEAR).convert("RGB").save(path)

    with ThreadPoolExecutor() as pool:  # large sizes (the GPU benchmarks' 448 px) take a while on one core
        list(pool.map(write, jobs))
    marker.touch()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["digits", "pets-sized"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=32, help="digits: side in pixels")
    parser.add_argument("--per-class", type=int, default=None)
    args = parser.parse_args()
    if args.dataset == "pets-sized":
        path = write_pets_sized(args.out, per_class=args.per_class or 100)
    else:
        path = write_digits(args.out, args.size, args.per_class)
    print(f"Wrote the {args.dataset} dataset to {path}/train/<class>/")


# ---- the recipe benchmark's datasets (benchmarks/recipe.py) --------------------------------------
# Each writes OUT/train/<class>/ and OUT/val/<class>/ from real images that ship inside scikit-learn,
# scikit-image and matplotlib, so both fastai and the template see exactly the same split. Train and
# val crops come from disjoint parts of each source photo, so no val pixel was seen in training.


def _rgb(array: np.ndarray) -> Image.Image:
    """Any uint8/float/bool grey or colour array -> an RGB Pillow image."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (255 * (array.astype(np.float64) - array.min()) / max(1e-9, np.ptp(array))).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def _crops(photo: Image.Image, box: tuple[float, float, float, float], count: int, size: int,
           rng: np.random.Generator, side: tuple[float, float] = (0.3, 0.5)) -> list[Image.Image]:
    """``count`` random square crops inside ``box`` (fractions of the photo), each resized to ``size``."""
    width, height = photo.size
    left, top, right, bottom = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    crops = []
    for _ in range(count):
        edge = rng.uniform(*side) * min(width, height)
        edge = min(edge, right - left, bottom - top)
        x = rng.uniform(left, right - edge)
        y = rng.uniform(top, bottom - edge)
        crop = photo.crop((round(x), round(y), round(x + edge), round(y + edge)))
        crops.append(crop.resize((size, size), Image.BICUBIC))
    return crops


def _save(images: list[Image.Image], folder: Path, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images, start):
        image.save(folder / f"{index:04d}.png")


def _photos() -> dict[str, Image.Image]:
    """Sixteen real photographs and scans, from the packages installed with the benchmarks."""
    import matplotlib
    from skimage import data
    from sklearn.datasets import load_sample_images

    sklearn_photos = load_sample_images().images
    photos = {
        "astronaut": data.astronaut(), "cat": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
        "galaxies": data.hubble_deep_field(), "tissue": data.immunohistochemistry(), "retina": data.retina(),
        "motorcycle": data.stereo_motorcycle()[0], "temple": sklearn_photos[0], "flower": sklearn_photos[1],
        "camera": data.camera(), "moon": data.moon(), "coins": data.coins(), "cells": data.cell(),
        "clock": data.clock(),
        "hopper": np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")),
    }
    return {name: _rgb(array) for name, array in photos.items()}


def write_split_digits(out: Path, size: int, per_class: tuple[int, int] = (40, 15), seed: int = 0,
                       counts: list[int] | None = None, classes: int = 10) -> Path:
    """Handwritten digits, ``per_class`` (train, val) images of each; ``counts`` makes train uneven."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(classes):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        train = counts[label] if counts else per_class[0]
        images = [_rgb(255 - digits.images[i] * (255 / 16)).resize((size, size), Image.BILINEAR) for i in indices]
        _save(images[:train], out / "train" / NAMES[label])
        _save(images[train:train + per_class[1]], out / "val" / NAMES[label], start=train)
    return out


def write_textures(out: Path, size: int, per_class: tuple[int, int] = (40, 20), seed: int = 0) -> Path:
    """Brick, grass and gravel photos in small, low-resolution patches (a twelfth of the photo's width,
    written at ``size`` px): crops from the top 60% train, from the bottom 40% validate."""
    from skimage import data

    rng = np.random.default_rng(seed)
    for name in ("brick", "grass", "gravel"):
        photo = _rgb(getattr(data, name)())
        _save(_crops(photo, (0, 0, 1, 0.6), per_class[0], size, rng, (0.06, 0.1)), out / "train" / name)
        _save(_crops(photo, (0, 0.6, 1, 1), per_class[1], size, rng, (0.06, 0.1)), out / "val" / name, 1000)
    return out


def write_faces(out: Path, size: int, val_per_class: int = 20, seed: int = 0) -> Path:
    """scikit-image's 200 small grey pictures from Labeled Faces in the Wild: 100 faces, 100 not faces."""
    from skimage import data

    pictures = data.lfw_subset()
    rng = np.random.default_rng(seed)
    for name, group in (("face", pictures[:100]), ("not_face", pictures[100:])):
        images = [_rgb(group[i]).resize((size, size), Image.BICUBIC) for i in rng.permutation(len(group))]
        _save(images[val_per_class:], out / "train" / name)
        _save(images[:val_per_class], out / "val" / name, 1000)
    return out


def write_photo_crops(out: Path, size: int, per_class: tuple[int, int] = (8, 5), seed: int = 0) -> Path:
    """Sixteen classes, few images each: which photo is this crop from? Train crops come from the left
    60% of each photo, val crops from the right 40%."""
    rng = np.random.default_rng(seed)
    for name, photo in _photos().items():
        _save(_crops(photo, (0, 0, 0.6, 1), per_class[0], size, rng), out / "train" / name)
        _save(_crops(photo, (0.6, 0, 1, 1), per_class[1], size, rng, (0.3, 0.4)), out / "val" / name, 1000)
    return out


def write_pets_sized(out: Path, classes: int = 37, per_class: int = 100, size: tuple[int, int] = (500, 375),
                     seed: int = 0) -> Path:
    """A folder the size of Oxford-IIIT Pet (37 classes, 3,700 JPEGs of 500x375): for timing a whole run,
    not for accuracy. Each image is a random crop of one of the sixteen photos, so it decodes like a photo."""
    from concurrent.futures import ThreadPoolExecutor

    out = Path(out)
    if (out / ".complete").exists():
        return out
    sources = list(_photos().values())
    rng = np.random.default_rng(seed)
    jobs = []
    for label in range(classes):
        folder = out / "train" / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            photo = sources[int(rng.integers(len(sources)))]
            width, height = photo.size
            side = rng.uniform(0.4, 1.0)
            box_w, box_h = max(8, int(width * side)), max(8, int(height * side))
            x, y = int(rng.integers(0, width - box_w + 1)), int(rng.integers(0, height - box_h + 1))
            jobs.append((photo, (x, y, x + box_w, y + box_h), folder / f"{index:04d}.jpg"))

    def write(job) -> None:
        photo, box, path = job
        photo.crop(box).resize(size, Image.BILINEAR).save(path, quality=90)

    with ThreadPoolExecutor() as pool:  # Pillow releases the GIL while it resizes and encodes
        list(pool.map(write, jobs))
    (out / ".complete").touch()
    return out


# Benchmark datasets by name: how each is built at a given source size and seed.
RECIPE_DATASETS = {
    "digits": lambda out, size, seed=0: write_split_digits(out, size, seed=seed),
    "textures": write_textures,
    "faces": write_faces,
    "photo-crops": write_photo_crops,
    # Five digits with 8x as many training images of the commonest as of the rarest; val is balanced.
    "uneven-digits": lambda out, size, seed=0: write_split_digits(
        out, size, (0, 12), seed=seed, counts=[96, 64, 40, 24, 12], classes=5),
}


if __name__ == "__main__":
    main()
