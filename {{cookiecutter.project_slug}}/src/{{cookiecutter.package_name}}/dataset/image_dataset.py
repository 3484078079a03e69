"""The PyTorch ``Dataset`` behind every DataLoader (a list of (path, label) samples in, uint8 tensors out),
and how training batches draw from it.

data.py gives each split its transform: for training the square that the device crops and flips
later (``cache.square``), for validation and test timm's evaluation transform, exactly as predict
prepares a photo.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset, RandomSampler, Sampler, WeightedRandomSampler

from {{ cookiecutter.package_name }}.dataset.cache import DecodedCache
from {{ cookiecutter.package_name }}.dataset.decode import load_rgb
from {{ cookiecutter.package_name }}.dataset.folders import Sample


class ImageDataset(Dataset):
    """A list of (path, label) samples; yields (uint8 image tensor, label, index).

    ``transform`` turns a decoded photo into a fixed-shape uint8 tensor: for training the square
    that the device crops and flips later (``cache.square``), for validation and test timm's
    evaluation transform, exactly as predict prepares a photo.
    """

    def __init__(self, samples: list[Sample], transform, decode_size: int | None = None):
        self.samples = samples
        self.transform = transform
        self.decode_size = decode_size
        self.cache: DecodedCache | None = None  # filled by ``fill_cache`` when the images fit in memory

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, path: Path) -> Image.Image:
        return load_rgb(path, min_size=self.decode_size)

    def fill_cache(self) -> None:
        """Decode every image once and keep what ``transform`` makes of it (see cache.py)."""
        if self.cache is None and self.samples:
            paths = [sample.path for sample in self.samples]
            self.cache = DecodedCache(paths, lambda path: self.transform(self.load(path)))

    def __getitem__(self, index: int):
        sample = self.samples[index]
        image = self.cache[index] if self.cache is not None else self.transform(self.load(sample.path))
        return image, sample.label, index


def training_sampler(dataset: ImageDataset, balanced: bool, draws: int | None = None) -> Sampler | None:
    """How training batches pick their images: None (every image once an epoch, shuffled), every class
    equally often (``balanced``: --balance sampler), or ``draws`` images with replacement."""
    if balanced:
        return balanced_sampler(dataset.samples, draws)
    return RandomSampler(dataset, replacement=True, num_samples=draws) if draws else None


def balanced_sampler(samples: list[Sample], num_samples: int | None = None) -> WeightedRandomSampler:
    """Draws training images so that every class comes up equally often (with replacement)."""
    counts = Counter(sample.label for sample in samples)
    weights = [1.0 / counts[sample.label] for sample in samples]
    return WeightedRandomSampler(weights, num_samples=num_samples or len(samples), replacement=True)
