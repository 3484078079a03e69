"""Evaluation that looks at each photo twice: as it is and mirrored left to right.

Training flips photos at random (data.py), so a photo's mirror image is one the network knows just as
well. Averaging its two answers smooths out what one view gets wrong: on the benchmark datasets
(``benchmarks/recipe.py`` in the template) it added 2 to 4 points of validation accuracy, for twice the
work per prediction. Validation, metrics.json, ``predict``, ``export`` and the demo all go through it,
so the accuracy a run reports is the accuracy you get.
"""

from __future__ import annotations

import torch
from torch import nn


def mirror_averaged(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The mean of the network's logits for ``images`` and for the same images flipped left to right."""
    return (network(images) + network(images.flip(3))) / 2


class MirrorAveraged(nn.Module):
    """A network that answers with ``mirror_averaged`` logits: what predict and export use."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return mirror_averaged(self.network, images)
