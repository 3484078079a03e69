"""When and how fast the network learns: the learning-rate schedule, and BatchNorm's running averages
restarted at each fine-tuning epoch. ``Classifier`` (model/classifier.py) calls both."""

from __future__ import annotations

import math

from torch import nn


def lr_schedule(total_steps: int, freeze_steps: int, warmup_fraction: float):
    """Learning-rate multiplier per step: warm-up then cosine decay, restarted when the backbone thaws.

    The frozen phase and the fine-tuning phase each get their own warm-up, like fastai's ``fine_tune``.
    """
    phases = [(0, freeze_steps), (freeze_steps, total_steps - freeze_steps)]

    def factor(step: int) -> float:
        start, length = phases[0] if step < freeze_steps else phases[1]
        position, length = step - start, max(1, length)
        warmup = max(1, round(warmup_fraction * length))
        if position < warmup:
            return (position + 1) / warmup
        progress = min(1.0, (position - warmup) / max(1, length - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def restart_batchnorm_averages(model: nn.Module) -> None:
    """Make each BatchNorm layer's running statistics the plain average of the batches from now on.

    BatchNorm layers keep running averages of their inputs, which evaluation uses. PyTorch's default
    moves them 10% a step, so with few steps an epoch the ImageNet statistics never wash out and
    validation suffers while training looks fine. Called at the start of every fine-tuning epoch, this
    makes the epoch's statistics count alone, every batch equally, not just the last few batches.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # None: a cumulative average of every batch since the reset
