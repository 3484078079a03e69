"""Predict the class of your photos with a trained model.

    {{ cookiecutter.project_slug }} predict runs/<name> photo.jpg more-photos/
    {{ cookiecutter.project_slug }} predict runs/<name> photos/ --top-k 3 --csv predictions.csv
    {{ cookiecutter.project_slug }} predict exports/<name>-onnx photos/ --threshold 0.6

RUN_OR_BUNDLE is a run folder (its ``checkpoints/best.ckpt`` is used), a ``.ckpt`` file, or a bundle
written by ``export``. Photos are prepared exactly as the run's validation images were: the same
``data.build_transforms(..., training=False)`` and ``data.images_to_float``, built from the data config
stored in the checkpoint, so there is no second copy of the preprocessing to drift out of step.

``load_classifier`` is also what ``export`` and ``demo`` use to get a model ready to predict.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from {{ cookiecutter.package_name }}.data import build_transforms, decode_size, images_to_float
from {{ cookiecutter.package_name }}.device import choose_device
from {{ cookiecutter.package_name }}.errors import UsageError, UserError
from {{ cookiecutter.package_name }}.images import IMAGE_EXTENSIONS, is_hidden, load_rgb
from {{ cookiecutter.package_name }}.run_folder import RunFolder

console = Console(soft_wrap=True)

PROJECT = "{{ cookiecutter.package_name }}"  # the same tag model.py writes into every checkpoint
WHAT_TO_PASS = "pass a run folder made by train (runs/<name>), a .ckpt file from one, or a folder made by export"


@dataclass
class Prediction:
    """The top-k classes of one image, best first."""

    path: str
    labels: list[str]
    probabilities: list[float]


class LoadedClassifier:
    """A trained network with its class names and the exact validation preprocessing of its run.

    ``kind`` is ``"pytorch"`` (a checkpoint), ``"onnx"`` or ``"torchscript"`` (an exported bundle).
    """

    def __init__(self, kind: str, network: Any, class_names: list[str], data_config: dict[str, Any],
                 source: Path, run: RunFolder | None = None, backbone: str = "", device: str = "cpu"):
        self.kind = kind
        self.network = network
        self.class_names = class_names
        self.data_config = data_config
        self.source = source
        self.run = run
        self.backbone = backbone
        self.device = device
        self.transform = build_transforms(data_config, training=False)
        self.mean = torch.tensor(data_config["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(data_config["std"]).view(1, 3, 1, 1)
        self.decode_size = decode_size(data_config)  # big JPEGs are decoded smaller, as in validation

    def load_image(self, path: str | Path) -> torch.Tensor:
        """Read one file into the uint8 CHW tensor the model's validation loader would have made."""
        return self.prepare(load_rgb(path, min_size=self.decode_size))

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """An RGB Pillow image (already upright) -> uint8 CHW tensor, resized and cropped like val."""
        return self.transform(image)

    @torch.inference_mode()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW batch -> class logits (float32, on the CPU)."""
        if self.kind == "onnx":
            inputs = images_to_float(images, self.mean, self.std).numpy()
            return torch.from_numpy(self.network.run(None, {self.network.get_inputs()[0].name: inputs})[0])
        images = images.to(self.device)
        batch = images_to_float(images, self.mean.to(self.device), self.std.to(self.device))
        return self.network(batch).float().cpu()

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW batch -> class probabilities, one row per image."""
        return self.logits(images).softmax(dim=1)

    def top_k(self, probabilities: torch.Tensor, k: int) -> list[tuple[list[str], list[float]]]:
        """Per row: the ``k`` most likely class names and their probabilities, best first."""
        values, indices = probabilities.topk(min(k, len(self.class_names)), dim=1)
        return [([self.class_names[i] for i in row_i], [float(v) for v in row_v])
                for row_v, row_i in zip(values.tolist(), indices.tolist(), strict=True)]

    def describe(self) -> str:
        what = {"pytorch": f"checkpoint {self.source}", "onnx": f"ONNX bundle {self.source}",
                "torchscript": f"TorchScript bundle {self.source}"}[self.kind]
        return f"{what} ({len(self.class_names)} classes, {self.device})"


# ---- loading -----------------------------------------------------------------------------------------
def load_classifier(path: str | Path, accelerator: str = "auto") -> LoadedClassifier:
    """A run folder, a .ckpt file or an exported bundle -> a classifier ready to predict."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / "preprocess.json").is_file():
        return load_bundle(path)
    if path.is_dir():
        run = RunFolder(path)
        checkpoint = run.best if run.best.is_file() else run.last
        if not checkpoint.is_file():
            raise UserError(f"{path} has no checkpoints/best.ckpt, so it is not a finished run; {WHAT_TO_PASS}.")
    elif path.is_file() and path.suffix == ".ckpt":
        checkpoint = path
        parent = RunFolder(path.parent.parent)  # runs/<name>/checkpoints/best.ckpt -> runs/<name>
        run = parent if parent.config.is_file() else None
    elif path.is_file():
        raise UserError(f"{path} is not a .ckpt file; {WHAT_TO_PASS}.")
    else:
        raise UserError(f"{path} does not exist; {WHAT_TO_PASS}.")
    return load_checkpoint(checkpoint, run, accelerator)


def read_checkpoint(checkpoint: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The hyperparameters and weights of one of this project's checkpoints, or a one-line refusal."""
    try:
        # weights_only: a checkpoint is plain tensors and settings; nothing in it may run code.
        content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{checkpoint} cannot be read as a checkpoint of this project ({reason[:120]}); "
                        f"{WHAT_TO_PASS}.") from None
    hparams = content.get("hyper_parameters") if isinstance(content, dict) else None
    if not isinstance(hparams, dict) or "state_dict" not in content:
        raise UserError(f"{checkpoint} was not written by this project's train command (it has no model settings); "
                        f"{WHAT_TO_PASS}.")
    project = hparams.get("project")
    if project != PROJECT:
        raise UserError(f"{checkpoint} belongs to another project ({project or 'unknown'}), not {PROJECT}; "
                        "use it with the project that trained it, or train this one.")
    missing = [key for key in ("backbone", "class_names", "data_config") if key not in hparams]
    if missing:
        raise UserError(f"{checkpoint} lacks {', '.join(missing)} in its settings; it is damaged or too old. "
                        "Train again to get a new one.")
    return hparams, content["state_dict"]


def load_checkpoint(checkpoint: Path, run: RunFolder | None = None, accelerator: str = "auto") -> LoadedClassifier:
    """Rebuild the timm network from the checkpoint's own settings (no download) and load its weights."""
    import timm

    from {{ cookiecutter.package_name }}.model import build_network

    hparams, state = read_checkpoint(checkpoint)
    class_names = list(hparams["class_names"])
    if run is not None and run.labels.is_file():
        labels = json.loads(run.labels.read_text(encoding="utf-8"))
        if labels != class_names:
            raise UserError(f"{checkpoint} was trained on classes {class_names} but {run.labels} lists {labels}; "
                            "the checkpoint does not belong to this run folder.")
    backbone = hparams["backbone"]
    if not timm.is_model(backbone):
        raise UserError(f"this timm version has no model '{backbone}' (the checkpoint's backbone); "
                        "upgrade timm with: pip install -U timm")
    network = build_network(backbone, len(class_names), hparams["data_config"]["input_size"][-1])
    weights = {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}
    try:
        network.load_state_dict(weights)
    except RuntimeError:
        raise UserError(f"the weights in {checkpoint} do not fit a {backbone} with {len(class_names)} classes; "
                        "the file is damaged or was edited. Use another checkpoint of the run.") from None
    device = choose_device(accelerator, "32", 0).accelerator
    network = network.to(device).eval()
    return LoadedClassifier("pytorch", network, class_names, hparams["data_config"], checkpoint, run, backbone, device)


def load_bundle(folder: Path) -> LoadedClassifier:
    """An exported bundle: model.onnx (via onnxruntime) or model.pt (TorchScript), labels and preprocessing."""
    try:
        class_names = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        preprocess = json.loads((folder / "preprocess.json").read_text(encoding="utf-8"))
        data_config = preprocess["data_config"]
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{folder} is not a complete export bundle ({type(err).__name__}: {err}); "
                        "export it again with: export runs/<name>") from None
    if (folder / "model.onnx").is_file():
        ort = require("onnxruntime", "export")
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return LoadedClassifier("onnx", session, class_names, data_config, folder,
                                backbone=preprocess.get("backbone", ""))
    if (folder / "model.pt").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": it still works
            network = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
        return LoadedClassifier("torchscript", network, class_names, data_config, folder,
                                backbone=preprocess.get("backbone", ""))
    raise UserError(f"{folder} has no model.onnx or model.pt; export it again with: export runs/<name>")


def require(module: str, extra: str):
    """Import an optional dependency, or say in one line which pip command installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"this needs the optional package {module}: pip install -e .[{extra}]") from None


# ---- finding and reading the images --------------------------------------------------------------
def find_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to predict (folders searched recursively) and the ones skipped with the reason why."""
    files, skipped = [], []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(is_hidden(Path(part)) for part in file.relative_to(path).parts):
                    continue  # .DS_Store, ._IMG_0001.jpg: the system's, not the user's
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(file)
                else:
                    skipped.append((str(file), "not an image file"))
        elif path.is_file():
            files.append(path)  # named explicitly: try it whatever its extension, and say if it fails
        else:
            skipped.append((given, "no such file or folder"))
    return files, skipped


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


# ---- the predict command --------------------------------------------------------------------------
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
    skipped += unreadable
    if not predictions:
        if not skipped:
            raise UserError(f"no images found in {' '.join(inputs)}; pass photos or folders of photos.")
        name, reason = skipped[0]
        more = f" (and {len(skipped) - 1} more file(s))" if len(skipped) > 1 else ""
        raise UserError(f"nothing to predict: {name}: {reason}{more}; pass JPEG, PNG, WebP, BMP, GIF or TIFF photos.")

    print_table(predictions, threshold)
    for name, reason in skipped:
        console.print(f"[yellow]Skipped[/] {name}: {reason}")
    if csv_path:
        write_csv(predictions, Path(csv_path).expanduser(), top_k, threshold)
        console.print(f"Saved {len(predictions)} rows to {csv_path}")
    seconds = time.perf_counter() - started
    console.print(f"{len(predictions)} image(s) predicted with {classifier.describe()} in {seconds:.1f} s"
                  + (f"; {len(skipped)} skipped" if skipped else ""))
    return predictions


def shown_label(prediction: Prediction, threshold: float | None) -> str:
    """The top-1 class, or ``unsure`` when its probability is below ``threshold``."""
    if threshold is not None and prediction.probabilities[0] < threshold:
        return "unsure"
    return prediction.labels[0]


def print_table(predictions: list[Prediction], threshold: float | None) -> None:
    table = Table(title="Predictions", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("top-1 class")
    table.add_column("probability", justify="right")
    if len(predictions[0].labels) > 1:
        table.add_column("next most likely")
    for prediction in predictions:
        label = shown_label(prediction, threshold)
        if label == "unsure":
            label = f"[yellow]unsure[/] (best guess {prediction.labels[0]})"
        row = [prediction.path, label, f"{prediction.probabilities[0]:.1%}"]
        if len(prediction.labels) > 1:
            others = zip(prediction.labels[1:], prediction.probabilities[1:], strict=True)
            row.append(", ".join(f"{name} {p:.1%}" for name, p in others))
        table.add_row(*row)
    console.print(table)


def write_csv(predictions: list[Prediction], path: Path, top_k: int, threshold: float | None) -> None:
    """One row per image: path, label (top-1 or unsure), probability, then label_2, probability_2, ..."""
    k = len(predictions[0].labels)
    header = ["path", "label", "probability"]
    for rank in range(2, k + 1):
        header += [f"label_{rank}", f"probability_{rank}"]
    if threshold is not None:
        header.append("best_guess")  # the top-1 class even when the label says unsure
    try:
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            for p in predictions:
                row = [p.path, shown_label(p, threshold), f"{p.probabilities[0]:.4f}"]
                for name, probability in zip(p.labels[1:], p.probabilities[1:], strict=True):
                    row += [name, f"{probability:.4f}"]
                if threshold is not None:
                    row.append(p.labels[0])
                writer.writerow(row)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror}); check that its folder exists.") from None
