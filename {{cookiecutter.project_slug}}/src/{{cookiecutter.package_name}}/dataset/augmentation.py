"""The training augmentation, run on whole batches on the device: random crop, flip and colour jitter.

data.py sets the recipe (``train_augmentation``: how much to crop, how much jitter); this is how it
runs. Doing it on the device costs a fraction of a training step; in DataLoader workers it would be
the bottleneck.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn


class DeviceAugmentation:
    """Random resized crop, horizontal flip and colour jitter for a float batch in [0, 1], on its device.

    kornia draws new parameters for every image of the batch (torchvision's v2 transforms would give
    a whole batch the same crop), with the same rules as timm's training transform: a crop of ``scale``
    of the square's area with a width/height in ``ratio``, then resized to ``size`` (the model's input).
    The squares are that size (a crop is enlarged by at most a third), so resampling needs no anti-aliasing.

    A plain object, not a submodule of the model: when Lightning moves the model to the GPU, kornia
    keeps drawing its random numbers on the CPU and sends them over without making the CPU wait for
    the GPU (random numbers drawn on the GPU would be read back, a wait at every step).
    """

    def __init__(self, size: int, scale: tuple[float, float], ratio: tuple[float, float], jitter: float,
                 resample: str = "bilinear", flip: bool = True):
        steps = [
            # "resample" crops the whole batch in one warp; the default ("slice") loops over the images.
            K.RandomResizedCrop((size, size), scale=scale, ratio=ratio, resample=resample,
                                cropping_mode="resample"),
        ]
        if flip:
            steps.append(K.RandomHorizontalFlip())
        if jitter > 0:
            steps.append(K.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        self.steps = nn.Sequential(*steps)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.steps(images)
