"""The network: a timm backbone with a new head, the weights it starts from, and its preprocessing.

``build_network`` is ``timm.create_model(name, num_classes=n)`` (``--drop-path`` makes training skip
residual blocks at random, from 224 px up by default). ``load_starting_weights`` fills a new run's
network: timm's pretrained weights (``pretrained_download`` fails fast and clearly offline), or
``load_weights_file`` for ``--weights FILE``; ``weights_source`` says in words where they came from.
``model_data_config`` is the preprocessing the backbone was pretrained with, which data.py and predict
use. ``backbone_layers`` splits it into layers for their learning rates; ``mirror_averaged`` is how
evaluation looks at each photo twice.
"""

from __future__ import annotations

import contextlib
import difflib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import timm
import torch
from torch import nn

from {{ cookiecutter.package_name }}.errors import NoPretrainedWeights, UserError

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


def load_starting_weights(network: nn.Module, name: str, image_size: int | None, pretrained: bool,
                          weights: str | None) -> None:
    """Fill a new run's ``network`` with its starting weights: the ``weights`` file (``--weights``), or
    timm's pretrained weights for ``name`` (downloaded once, then cached), or none (``--no-pretrained``).
    The new head stays as it is in every case."""
    if weights:
        load_weights_file(network, weights)  # the backbone's tensors; the new head stays as it is
    elif pretrained:
        with pretrained_download(name):  # offline, this fails at once and says what to do instead
            downloaded = build_network(name, network.num_classes, image_size, pretrained=True)
        network.load_state_dict(downloaded.state_dict())  # timm gave the download a new head of our size


def starting_network(settings: dict[str, Any], num_classes: int) -> tuple[nn.Module, str]:
    """A new network for a run's ``settings`` (its config.yaml) with the weights the run started from,
    and where they came from, in words (``review`` takes its features from it: they never saw a label)."""
    name, image_size = settings["backbone"], settings.get("image_size")
    pretrained, weights = bool(settings.get("pretrained", True)), settings.get("weights")
    network = build_network(name, num_classes, image_size)
    load_starting_weights(network, name, image_size, pretrained, weights)
    return network, weights_source(name, pretrained, weights)


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


def weights_source(name: str, pretrained: bool = True, weights: str | None = None) -> str:
    """Where the starting weights come from, in words (saved in the checkpoint and metrics.json)."""
    if weights:
        return f"file:{Path(weights).expanduser().resolve()}"
    return f"timm:{name}" if pretrained else "none (random init)"


@contextlib.contextmanager
def pretrained_download(name: str) -> Iterator[None]:
    """Around timm's download of the pretrained weights of ``name``: a missing download ends in one line
    naming both ways out (``NoPretrainedWeights``, exit code 3).

    Without a network the hub client retries for about a minute before failing. So the Hub is tried
    first, for a few seconds; when it does not answer, offline mode (for this download only, then it is
    switched back) makes the client use the local cache at once, or fail at once if it is empty.
    """
    if not timm.list_pretrained(name if "." in name else name + ".*"):
        check_backbone_name(name)  # an unknown name is the likelier mistake
        raise UserError(f"timm has no pretrained weights for '{name}'; pick another backbone or use --no-pretrained.")
    from huggingface_hub import constants

    was_offline = constants.HF_HUB_OFFLINE
    if not was_offline and not _hub_reachable():
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        reason = "no internet connection and they are not in the cache" if constants.HF_HUB_OFFLINE else str(err)
        raise NoPretrainedWeights(
            f"could not get pretrained weights for '{name}' ({reason.splitlines()[0]}). "
            "Use --weights FILE with a local .pth/.safetensors file, or --no-pretrained to train from scratch."
        ) from None
    finally:
        constants.HF_HUB_OFFLINE = was_offline


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the Hugging Face Hub? A few seconds at most, no retries."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_weights_file(model: nn.Module, path: str) -> None:
    """Copy a local weights file into ``model``'s backbone; the classifier head stays new.

    The file is read as tensors only: a .pth/.pt/.bin file with ``torch.load(weights_only=True)``, so a
    pickle that would build other Python objects (and could run code) is refused; .safetensors holds
    nothing else anyway."""
    import argparse
    import pickle

    import torch
    from timm.models import clean_state_dict

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"weights file {file} does not exist; check the path given to --weights.")
    try:
        if file.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            content = load_file(str(file), device="cpu")
        else:  # timm's training checkpoints also keep their settings (an argparse.Namespace): plain data
            with torch.serialization.safe_globals([argparse.Namespace]):
                content = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        if isinstance(err, pickle.UnpicklingError):  # refused by weights_only, or not a pickle at all
            raise UserError(f"weights file {file} is not plain tensors (it is damaged, or holds Python objects that "
                            "could run code when loaded), so it was not loaded; save the model's state_dict() "
                            "or use a .safetensors file.") from None
        raise UserError(
            f"could not read weights file {file} ({type(err).__name__}); use a .pth or .safetensors file."
        ) from None
    if isinstance(content, dict):  # a training checkpoint (timm's, Lightning's) keeps the weights under a key
        content = next((content[key] for key in ("state_dict", "model") if isinstance(content.get(key), dict)),
                       content)
    state = {k: v for k, v in content.items() if isinstance(v, torch.Tensor)} if isinstance(content, dict) else {}
    if not state:
        raise UserError(f"weights file {file} holds no tensors by name (a state dict); "
                        "save the model's state_dict() or use a .safetensors file.")
    state = clean_state_dict(state)  # names saved from a DDP or torch.compile wrapper, as timm reads them

    # timm's own conversion for this architecture, e.g. a vision transformer's position table resized
    # to our image size. Architectures without one take the file as it is.
    convert = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if convert is not None:
        # A file not in the format it converts is taken as it is; the shape check below explains any mismatch.
        with contextlib.suppress(Exception):
            state = convert(state, model)

    own = model.state_dict()
    for prefix in ("model.", "backbone."):  # a checkpoint of a LightningModule that wraps the model
        if not (state.keys() & own.keys()) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    head = {name for name in own if name.startswith(_classifier_prefix(model))}
    usable = {k: v for k, v in state.items() if k in own and k not in head and v.shape == own[k].shape}
    missing = [k for k in own if k not in head and k not in usable and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(
            f"weights file {file} does not fit backbone '{model.pretrained_cfg.get('architecture')}' "
            f"({len(missing)} of {len(own)} tensors missing or of another shape, e.g. {missing[0]}); "
            "use weights saved from the same model, or pass the matching --backbone."
        )
    model.load_state_dict(usable, strict=False)


def _classifier_prefix(model: nn.Module) -> str:
    """State-dict prefix of the classifier layer, e.g. 'classifier.' or 'head.fc.'."""
    classifier = model.get_classifier()
    for name, module in model.named_modules():
        if module is classifier:
            return name + "."
    raise RuntimeError("timm model has no classifier layer")


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
