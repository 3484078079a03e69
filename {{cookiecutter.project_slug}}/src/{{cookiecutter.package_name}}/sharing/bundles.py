"""Reading a bundle written by ``export`` back in: its model (ONNX Runtime or TorchScript), class names
and preprocessing, so that ``predict`` and ``demo`` take a bundle as well as a run folder.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.sharing.extras import require


@dataclass
class Bundle:
    """What an exported folder holds; ``network`` maps a normalised float batch to logits, like PyTorch's."""

    kind: str  # "onnx" or "torchscript"
    network: Any
    class_names: list[str]
    data_config: dict[str, Any]  # timm's description of the preprocessing, as the checkpoint had it
    backbone: str


class OnnxNetwork:
    """An ONNX Runtime session that takes and returns tensors, so it is called like a PyTorch network."""

    def __init__(self, path: Path):
        ort = require("onnxruntime", "export")
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: batch.cpu().numpy()})[0])


def is_bundle(folder: Path) -> bool:
    return folder.is_dir() and (folder / "preprocess.json").is_file()


def load_bundle(folder: Path) -> Bundle:
    """An exported bundle: model.onnx (via onnxruntime) or model.pt (TorchScript), labels and preprocessing."""
    try:
        class_names = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        preprocess = json.loads((folder / "preprocess.json").read_text(encoding="utf-8"))
        data_config = preprocess["data_config"]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{folder} is not a complete export bundle ({type(err).__name__}: {err}); "
                        "export it again with: export runs/<name>") from None
    backbone = preprocess.get("backbone", "")
    if (folder / "model.onnx").is_file():
        return Bundle("onnx", OnnxNetwork(folder / "model.onnx"), class_names, data_config, backbone)
    if (folder / "model.pt").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": it still works
            network = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
        return Bundle("torchscript", network, class_names, data_config, backbone)
    raise UserError(f"{folder} has no model.onnx or model.pt; export it again with: export runs/<name>")
