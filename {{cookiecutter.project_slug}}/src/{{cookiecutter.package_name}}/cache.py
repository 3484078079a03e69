"""Decode each image once: a memory cache of small uint8 copies for datasets that fit.

Decoding a JPEG or PNG costs more than the random crop, flip and colour jitter applied to it, and
on a laptop the same CPU cores also train the model. So when the whole dataset fits in a modest
amount of memory, every image is decoded once, shrunk to about the size training uses (shorter side
= image size / crop ratio, the size the validation transform resizes to anyway) and kept as uint8.
Augmentation then starts from the cached copy each epoch, exactly as it would from the file.

Big datasets (more than ``CACHE_BUDGET_BYTES``) are read from disk every time, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from {{ cookiecutter.package_name }}.device import cpu_count

# Edit here: the most memory the cache may use. 2 GB holds about 30,000 images at 128 px
# or 10,000 at 224 px; beyond that, images are decoded from disk each time.
CACHE_BUDGET_BYTES = 2 * 1024**3


def cache_side(image_size: int, crop_pct: float) -> int:
    """Shorter side of a cached image: what the validation transform resizes to before its centre crop."""
    return math.floor(image_size / crop_pct)


def fits_in_cache(num_images: int, side: int, copies: int = 1) -> bool:
    """Whether ``num_images`` images of shorter side ``side`` fit the budget (4:3 photos assumed).

    ``copies``: loader processes that each hold their own copy (on macOS and Windows, workers get one each).
    """
    estimate = num_images * side * side * 4 // 3 * 3 * max(1, copies)
    return estimate <= CACHE_BUDGET_BYTES


def shrink(image: Image.Image, side: int) -> Image.Image:
    """Resize so the shorter side is ``side`` (never enlarge: a small image stays as it is)."""
    width, height = image.size
    scale = side / min(width, height)
    if scale >= 1:
        return image
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return image.resize(size, Image.BICUBIC, reducing_gap=2.0)


class DecodedCache:
    """Images decoded once, as uint8 HxWx3 arrays, in the same order as the paths given."""

    def __init__(self, paths: Sequence[Path], load: Callable[[Path], Image.Image], side: int,
                 threads: int | None = None):
        def decode(path: Path) -> np.ndarray:
            return np.asarray(shrink(load(path), side))

        # Pillow releases the GIL while decoding and resizing, so threads use every core.
        with ThreadPoolExecutor(max_workers=threads or cpu_count()) as pool:
            self.arrays = list(pool.map(decode, paths, chunksize=16))

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> Image.Image:
        return Image.fromarray(self.arrays[index])

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays)
