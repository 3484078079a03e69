"""The weights a new run's network starts from, and where they came from.

``load_starting_weights`` fills a new network: from ``--weights FILE`` (``load_weights_file``: tensors
only, nothing that could run code), or timm's pretrained weights (``pretrained_download`` fails fast and
clearly offline), or none (``--no-pretrained``). ``weights_source`` says in words where they came from;
``starting_network`` builds a network with them (``review`` takes its features from it).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import timm
from torch import nn

from {{ cookiecutter.package_name }}.errors import NoPretrainedWeights, UserError
from {{ cookiecutter.package_name }}.model.network import build_network, check_backbone_name


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
