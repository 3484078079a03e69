"""The network: a timm backbone with a new head, and its preprocessing.

``build_network`` is ``timm.create_model(name, num_classes=n)`` (``--drop-path`` makes training skip
residual blocks at random, from 224 px up by default); the weights it starts from are weights.py's.
``model_data_config`` is the preprocessing the backbone was pretrained with, which data.py and predict
use. ``backbone_layers`` splits it into layers for their learning rates; ``mirror_averaged`` is how
evaluation looks at each photo twice.
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Any

import timm
import torch
from torch import nn

from {{ cookiecutter.package_name }}.errors import UserError

AUTO = "auto"
# --drop-path auto: stochastic depth from ImageNet's own image size up, none below. At 224 px a network
# learns a small dataset by heart within a few epochs and skipping blocks at random holds it back; small
# images give it little to memorise, and there skipping blocks only costs accuracy.
AUTO_DROP_PATH = 0.2
AUTO_DROP_PATH_FROM_SIZE = 224


def drop_path_rate(setting: float | str, image_size: int | None) -> float:
    """The chance of skipping each residual block that ``--drop-path`` (a number or auto) asks for."""
    if setting != AUTO:
        return float(setting)
    return AUTO_DROP_PATH if image_size is not None and image_size >= AUTO_DROP_PATH_FROM_SIZE else 0.0


def check_backbone_name(name: str) -> None:
    """Fail with close suggestions when timm does not know ``name``."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else " See timm.list_models() for the names."
    raise UserError(f"timm has no model called '{name}'.{hint}")


def build_network(name: str, num_classes: int, image_size: int | None = None, pretrained: bool = False,
                  drop_path: float | str = 0.0) -> nn.Module:
    """``timm.create_model``, built for ``image_size`` where the architecture needs to know it, with
    ``drop_path``: the chance that training skips each residual block (stochastic depth; none when 0;
    auto: see ``drop_path_rate``).

    Vision transformers cut images into a fixed grid of patches, so they are built for one input size
    (timm adapts pretrained weights to it); CNNs take any size and have no such argument.
    """
    options = {"pretrained": pretrained, "num_classes": num_classes}
    rate = drop_path_rate(drop_path, image_size)
    if rate:  # only when asked: a few timm models have no residual blocks and no such argument
        options["drop_path_rate"] = rate
    try:
        if image_size is not None:
            with contextlib.suppress(TypeError):  # "unexpected keyword argument 'img_size'": a CNN
                return timm.create_model(name, img_size=image_size, **options)
        return timm.create_model(name, **options)
    except RuntimeError:  # "Unknown model": say which names are close (a UserError), else the error as it is
        check_backbone_name(name)
        raise
    except TypeError as error:  # "unexpected keyword argument 'drop_path_rate'": --drop-path on such a model
        if "drop_path_rate" in str(error):
            if drop_path == AUTO:  # the default, on a model with no residual blocks: nothing to skip
                return build_network(name, num_classes, image_size, pretrained)
            raise UserError(f"{name} has no residual blocks for --drop-path to skip; leave it at 0.") from None
        raise


def model_data_config(model: nn.Module, image_size: int) -> dict[str, Any]:
    """Preprocessing the backbone was pretrained with (mean, std, interpolation) at our size, looking at
    the whole square."""
    config = timm.data.resolve_model_data_config(model)
    config["input_size"] = (3, image_size, image_size)
    # Validation, predict and export see the whole centre square of a photo, as training's random crops
    # (75-100% of it) do. timm's ImageNet setting (crop_pct 0.875) would cut its outer eighth off all
    # round, and with it what sits near the edges of a photo.
    config["crop_pct"] = 1.0
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}


def backbone_layers(model: nn.Module) -> list[list[nn.Parameter]]:
    """The backbone's parameters layer by layer, the one just below the head first, the stem last.

    timm's ``group_matcher`` knows each architecture's stages and blocks (17 layers below the head for
    efficientnet_lite0, 9 for resnet18); a model without one is one layer.
    """
    head = {id(p) for p in model.get_classifier().parameters()}
    named = [(name, p) for name, p in model.named_parameters() if id(p) not in head]
    if not hasattr(model, "group_matcher"):
        return [[p for _, p in named]]
    layer_of = timm.models.group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    layers: dict[int, list[nn.Parameter]] = {}
    for name, parameter in named:
        layers.setdefault(layer_of.get(name, -1), []).append(parameter)
    return [layers[key] for key in sorted(layers, reverse=True)]


def mirror_averaged(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The mean of the network's logits for ``images`` and for the same images flipped left to right.

    Training flips photos at random (data.py), so a photo's mirror image is one the network knows just
    as well; averaging the two answers smooths out what one view gets wrong, for twice the work.
    Validation, metrics.json, ``predict``, ``export`` and the demo all go through it, so the accuracy a
    run reports is the accuracy you get.
    """
    return (network(images) + network(images.flip(3))) / 2


class MirrorAveraged(nn.Module):
    """A network that answers with ``mirror_averaged`` logits: what predict and export use."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return mirror_averaged(self.network, images)
