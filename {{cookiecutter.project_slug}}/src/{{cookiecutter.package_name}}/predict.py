"""Predict the class of your photos with a trained model.

    {{ cookiecutter.project_slug }} predict runs/<name> photo.jpg more-photos/
    {{ cookiecutter.project_slug }} predict runs/<name> photos/ --top-k 3 --csv predictions.csv
    {{ cookiecutter.project_slug }} predict exports/<name>-onnx photos/ --threshold 0.6

RUN_OR_BUNDLE is a run folder (its best.ckpt), a ``.ckpt`` file, or a bundle from ``export`` (which, like
``demo``, gets its model from ``load_classifier``). Photos are prepared exactly as validation did: the same
``data.build_transforms(..., training=False)`` and ``data.images_to_float``, from the checkpoint's data
config, so no second copy of the preprocessing can drift out of step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from {{ cookiecutter.package_name }}.data import build_transforms, images_to_float
from {{ cookiecutter.package_name }}.dataset.decode import decode_size, load_rgb
from {{ cookiecutter.package_name }}.dataset.files import find_images
from {{ cookiecutter.package_name }}.device import choose_device
from {{ cookiecutter.package_name }}.errors import UsageError
from {{ cookiecutter.package_name }}.model import load_checkpoint as load_model
from {{ cookiecutter.package_name }}.run_folder.finding import find_checkpoint
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder
from {{ cookiecutter.package_name }}.sharing.bundles import is_bundle, load_bundle
from {{ cookiecutter.package_name }}.sharing.results import Prediction, show_predictions


class LoadedClassifier:
    """A trained network with its class names and the exact validation preprocessing of its run.

    ``kind`` is ``"pytorch"`` (a checkpoint), ``"onnx"`` or ``"torchscript"`` (an exported bundle);
    ``network`` maps a normalised float batch to logits in every case.
    """

    def __init__(self, kind: str, network: Any, class_names: list[str], data_config: dict[str, Any],
                 source: Path, run: RunFolder | None = None, backbone: str = "", device: str = "cpu"):
        self.kind, self.network, self.class_names, self.data_config = kind, network, class_names, data_config
        self.source, self.run, self.backbone, self.device = source, run, backbone, device
        self.transform = build_transforms(data_config, training=False)
        self.mean = torch.tensor(data_config["mean"]).view(1, 3, 1, 1).to(device)
        self.std = torch.tensor(data_config["std"]).view(1, 3, 1, 1).to(device)
        self.decode_size = decode_size(data_config)  # big JPEGs are decoded smaller, as in validation

    def load_image(self, path: str | Path) -> torch.Tensor:
        """Read one file into the uint8 CHW tensor the model's validation loader would have made."""
        return self.prepare(load_rgb(path, min_size=self.decode_size))

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """An RGB Pillow image (already upright) -> uint8 CHW tensor, resized and cropped like val."""
        return self.transform(image)

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW batch -> the normalised float batch the network takes, on its device."""
        return images_to_float(images.to(self.device), self.mean, self.std)

    @torch.inference_mode()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW batch -> class logits (float32, on the CPU)."""
        return self.network(self.network_input(images)).float().cpu()

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW batch -> class probabilities, one row per image."""
        return self.logits(images).softmax(dim=1)

    def top_k(self, probabilities: torch.Tensor, k: int) -> list[tuple[list[str], list[float]]]:
        """Per row: the ``k`` most likely class names and their probabilities, best first."""
        values, indices = probabilities.topk(min(k, len(self.class_names)), dim=1)
        return [([self.class_names[i] for i in row_i], [float(v) for v in row_v])
                for row_v, row_i in zip(values.tolist(), indices.tolist(), strict=True)]

    def describe(self) -> str:
        what = {"pytorch": "checkpoint", "onnx": "ONNX bundle", "torchscript": "TorchScript bundle"}[self.kind]
        return f"{what} {self.source} ({len(self.class_names)} classes, {self.device})"


def load_classifier(path: str | Path, accelerator: str = "auto") -> LoadedClassifier:
    """A run folder, a .ckpt file or an exported bundle -> a classifier ready to predict."""
    path = Path(path).expanduser()
    if is_bundle(path):
        bundle = load_bundle(path)
        return LoadedClassifier(bundle.kind, bundle.network, bundle.class_names, bundle.data_config, path,
                                backbone=bundle.backbone)
    checkpoint, run = find_checkpoint(path)  # runs/<name> -> its best.ckpt; or a .ckpt, in a run folder or not
    return load_checkpoint(checkpoint, run, accelerator)


def load_checkpoint(checkpoint: Path, run: RunFolder | None = None, accelerator: str = "auto") -> LoadedClassifier:
    """``Classifier.load_from_checkpoint``: the network rebuilt from the checkpoint's own settings (no
    download), with its weights; it answers as validation did (mirror averaged unless --no-flip)."""
    # Anything but a checkpoint of this project, or one whose classes differ from its run's, is refused.
    model = load_model(checkpoint, run.labels if run is not None else None)
    device = choose_device(accelerator, "32", 0).accelerator
    hparams, network = model.hparams, model.inference_network().to(device)
    return LoadedClassifier("pytorch", network, list(hparams.class_names), hparams.data_config,
                            checkpoint, run, hparams.settings["backbone"], device)


def predict_files(classifier: LoadedClassifier, files: list[Path], top_k: int = 3,
                  batch_size: int = 32) -> tuple[list[Prediction], list[tuple[str, str]]]:
    """Predict every readable file in batches; unreadable ones are returned with the reason."""
    predictions, skipped = [], []
    for start in range(0, len(files), batch_size):
        tensors, names = [], []
        for file in files[start:start + batch_size]:
            try:
                tensors.append(classifier.load_image(file))
                names.append(str(file))
            except Image.DecompressionBombError:
                skipped.append((str(file), "too large for Pillow to decode safely; downscale it"))
            except (OSError, ValueError) as err:
                skipped.append((str(file), f"not an image Pillow can read ({type(err).__name__})"))
        if not tensors:
            continue
        probabilities = classifier.probabilities(torch.stack(tensors))
        for name, (labels, probs) in zip(names, classifier.top_k(probabilities, top_k), strict=True):
            predictions.append(Prediction(name, labels, probs))
    return predictions, skipped


def predict(target: str, inputs: list[str], top_k: int = 3, csv_path: str | None = None,
            threshold: float | None = None, batch_size: int = 32, accelerator: str = "auto") -> list[Prediction]:
    """Load the model, predict every image, print a table and optionally write a CSV."""
    if top_k < 1:
        raise UsageError("--top-k must be 1 or more.")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UsageError("--threshold is a probability between 0 and 1, e.g. --threshold 0.6")
    if batch_size < 1:
        raise UsageError("--batch-size must be 1 or more.")
    started = time.perf_counter()
    classifier = load_classifier(target, accelerator)
    files, skipped = find_images(inputs)
    predictions, unreadable = predict_files(classifier, files, top_k, batch_size)
    seconds = time.perf_counter() - started
    show_predictions(predictions, skipped + unreadable, inputs, f"{classifier.describe()} in {seconds:.1f} s",
                     csv_path, threshold)
    return predictions
