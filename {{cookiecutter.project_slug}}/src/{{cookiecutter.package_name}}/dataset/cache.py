"""Decode each image once: a memory cache of small uint8 images for datasets that fit.

Decoding a JPEG or PNG costs more than everything else the loader does, and on a laptop the same CPU
cores also train the model. So when the whole dataset fits in a modest amount of memory, every image
is decoded once and kept as uint8, already in the fixed shape its DataLoader hands out: training
images as squares of side ``cache_side`` (image size / crop ratio: the image size itself with the
template's crop ratio of 1, see ``square``), validation images exactly as predict prepares them.

Batches are then plain stacks of cached pixels: the random crop, flip and colour jitter run later,
on the whole batch on the device (``data.train_augmentation``).

Big datasets (more than ``CACHE_BUDGET_BYTES``) are read from disk every time, as before.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.dataset.parallel import cpu_count

# Edit here: the most memory the cache may use. 2 GB holds about 30,000 images at 128 px
# or 10,000 at 224 px; beyond that, images are decoded from disk each time.
CACHE_BUDGET_BYTES = 2 * 1024**3


def cache_side(image_size: int, crop_pct: float) -> int:
    """Side of a cached square: what the validation transform resizes to before its centre crop."""
    return math.floor(image_size / crop_pct)


def fits_in_cache(num_images: int, side: int, num_workers: int = 0) -> bool:
    """Whether ``num_images`` squares of side ``side`` fit the budget (validation images are smaller).

    Forked loader workers share the parent's memory; spawned ones (macOS, Windows) get a copy each.
    """
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    copies = 1 if num_workers == 0 or method == "fork" else num_workers
    return num_images * side * side * 3 * copies <= CACHE_BUDGET_BYTES


def square(image: Image.Image, side: int) -> torch.Tensor:
    """The centre square of ``image``, resized to ``side`` x ``side``, as a uint8 (3, side, side) tensor.

    A fixed shape lets whole batches be cropped on the device. The centre square is also all that
    validation and predict look at (they centre-crop), so training and prediction see the same part
    of a photo; for 4:3 photos the outer eighth on each long side is left out.
    """
    width, height = image.size
    edge = min(width, height)
    centre = ((width - edge) / 2, (height - edge) / 2, (width + edge) / 2, (height + edge) / 2)
    fitted = image.resize((side, side), Image.BICUBIC, box=centre)
    return torch.from_numpy(np.asarray(fitted).copy()).permute(2, 0, 1).contiguous()


class DecodedCache:
    """Images decoded once into one uint8 tensor of shape (N, 3, H, W), in the order of the paths.

    ``decode`` turns a path into the image the DataLoader hands out; every image has the same shape.
    """

    def __init__(self, paths: Sequence[Path], decode: Callable[[Path], torch.Tensor], threads: int | None = None):
        # One tensor rather than N arrays: worker processes share it without copying, and it pickles
        # into shared memory where workers are spawned (macOS, Windows).
        first = decode(paths[0])
        self.images = torch.empty((len(paths), *first.shape), dtype=torch.uint8)
        self.images[0] = first

        def fill(index: int) -> None:
            self.images[index] = decode(paths[index])

        # Pillow releases the GIL while decoding and resizing, so threads use every core.
        with ThreadPoolExecutor(max_workers=threads or cpu_count()) as pool:
            list(pool.map(fill, range(1, len(paths)), chunksize=16))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]
