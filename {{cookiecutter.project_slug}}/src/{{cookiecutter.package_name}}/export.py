"""Turn a run into a bundle anyone can use without this project, and prove it predicts the same.

    {{ cookiecutter.project_slug }} export runs/<name>                        # -> exports/<name>-onnx/
    {{ cookiecutter.project_slug }} export runs/<name> --format torchscript   # -> exports/<name>-torchscript/
    {{ cookiecutter.project_slug }} export runs/<name> --format space         # -> exports/<name>-space/ (Hugging Face)

The bundle::

    model.onnx (or model.pt)  the network: images in, logits out, any batch size
    labels.json               class names in the order of the outputs
    preprocess.json           how to turn a photo into the input: resize, crop, mean, std, interpolation
    predict.py                a script that needs only numpy, Pillow and onnxruntime
    README.md                 how to use it, and the numbers below
    export.json               the numbers below, for programs (the demo shows the latency)

After writing it, export runs the bundle's own predict.py code on real validation images of the run
and compares with PyTorch (parity), then times one image on the CPU for both (latency).

``--format space`` is the ONNX bundle plus what a Hugging Face Space needs: ``app.py`` (a Gradio page
and POST /classify, from space_app.py), ``serving.py`` (the upload checks the demo uses too),
``requirements.txt``, and a README that opens with the Space's metadata block and the publish commands.
"""

from __future__ import annotations

import csv
import importlib.resources
import importlib.util
import io
import json
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from {{ cookiecutter.package_name }}.config import read_yaml
from {{ cookiecutter.package_name }}.device import cpu_count
from {{ cookiecutter.package_name }}.errors import UsageError, UserError
from {{ cookiecutter.package_name }}.predict import LoadedClassifier, load_classifier, require
from {{ cookiecutter.package_name }}.run_folder import write_json
from {{ cookiecutter.package_name }}.serving import MAX_FULL_DECODE_MEGAPIXELS, MAX_MEGAPIXELS, MAX_UPLOAD_MB

console = Console(soft_wrap=True)

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt", "space": "model.onnx"}
BUNDLE_FILES = ("labels.json", "preprocess.json", "predict.py", "README.md", "export.json")
SPACE_FILES = ("app.py", "serving.py", "requirements.txt")
# What app.py imports on the Space, with the oldest versions it is written for.
SPACE_REQUIREMENTS = ("gradio>=5.0", "onnxruntime>=1.18", "numpy>=1.24", "pillow>=10.1")

# Parity tolerance on logits, relative to the largest logit (and at least this much in absolute terms).
# The exported graph does the same float32 arithmetic as PyTorch, but its kernels add up in another
# order; on timm backbones that moves logits by about 1e-6..1e-5 of their size. 1e-3 is a hundred times
# that noise, yet far below a wrong export: missing weights, BatchNorm left in training mode or a
# preprocessing mismatch move logits by 0.1 or more.
TOLERANCE = 1e-3


@dataclass
class ExportReport:
    """What ``export`` measured: parity with PyTorch, latency and size."""

    bundle: Path
    format: str
    images: int  # validation images compared
    max_abs_diff: float  # largest |logit_pytorch - logit_export|
    tolerance: float
    top1_agreement: float  # fraction of images with the same top-1 class
    pixels_identical: bool  # the bundle's numpy preprocessing gave exactly PyTorch's input
    pytorch_ms: float  # median single-image CPU latency
    export_ms: float
    pytorch_mb: float  # size of the weights as PyTorch saves them
    export_mb: float  # size of model.onnx / model.pt
    threads: int = 1  # CPU threads both runtimes had for the latency measurement

    @property
    def passed(self) -> bool:
        return self.top1_agreement == 1.0 and self.max_abs_diff <= self.tolerance


def export(target: str, fmt: str = "onnx", output: str | None = None, data: str | None = None,
           parity_images: int = 64, latency_runs: int = 50, threads: int = 0) -> ExportReport:
    """Write the bundle for a run, check it against PyTorch, time both; returns the measurements."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt}.")
    if fmt in ("onnx", "space"):
        require("onnx", "export")
        require("onnxscript", "export")  # PyTorch's ONNX exporter is built on it
        require("onnxruntime", "export")

    # 1. The trained model, on the CPU: a bundle is for machines without a GPU too.
    classifier = load_classifier(target, accelerator="cpu")
    if classifier.kind != "pytorch":
        raise UserError(f"{target} is already an exported bundle; export a run folder (runs/<name>) instead.")
    if classifier.run is None:
        raise UserError(f"{target} is not inside a run folder; export needs the run folder for its validation images "
                        "(pass runs/<name>).")
    images = validation_images(classifier, data, parity_images)
    bundle = bundle_folder(classifier, fmt, output)
    console.print(f"Exporting {classifier.describe()} to {fmt} in [bold]{bundle}[/]")

    # 2. The bundle: model, labels, preprocessing, predict.py, README.
    example = torch.stack([classifier.load_image(images[0])] * 2)  # batch of 2: the batch axis stays free
    network_input = normalise(classifier, example)
    write_model(classifier.network, network_input, bundle / FORMATS[fmt], fmt)
    write_json(bundle / "labels.json", classifier.class_names)
    write_json(bundle / "preprocess.json", preprocess_config(classifier))
    (bundle / "predict.py").write_text(bundle_script(), encoding="utf-8")

    # 3. Parity: PyTorch with the project's preprocessing vs the bundle's own predict.py code.
    report = check_parity(classifier, bundle, images, fmt)

    # 4. Latency and size.
    report.threads = threads or cpu_count()
    report.pytorch_ms, report.export_ms = measure_latency(classifier, bundle, images[0], latency_runs, report.threads)
    report.pytorch_mb = weights_megabytes(classifier.network)
    report.export_mb = (bundle / FORMATS[fmt]).stat().st_size / 1e6
    write_json(bundle / "export.json", measurements(report))
    if fmt == "space":
        write_space_files(bundle)
    readme = space_readme(classifier, report) if fmt == "space" else bundle_readme(classifier, report)
    (bundle / "README.md").write_text(readme, encoding="utf-8")
    print_report(report)
    if not report.passed:
        raise UserError(
            f"the exported model does not match PyTorch (top-1 agreement {report.top1_agreement:.1%}, "
            f"max logit difference {report.max_abs_diff:.2e} > {report.tolerance:.2e}); do not use {bundle}. "
            "Try the other --format, or upgrade torch/onnx/onnxruntime."
        )
    if fmt == "space":
        console.print(f"Space ready: [bold]{bundle}[/]  (try it: cd {bundle} && pip install -r requirements.txt "
                      f"&& python app.py; to publish it, see {bundle / 'README.md'})")
    else:
        console.print(f"Bundle ready: [bold]{bundle}[/]  (try: python {bundle / 'predict.py'} {images[0]})")
    return report


# ---- inputs --------------------------------------------------------------------------------------
def validation_images(classifier: LoadedClassifier, data: str | None, limit: int) -> list[Path]:
    """Up to ``limit`` validation images listed in the run's splits.csv, spread over the classes."""
    run = classifier.run
    if not run.splits.is_file():
        raise UserError(f"{run} has no splits.csv, so export cannot find validation images to check against.")
    root = Path(data).expanduser() if data else Path(str(read_yaml(run.config).get("data", ""))).expanduser()
    with open(run.splits, newline="", encoding="utf-8") as file:
        rows = [row for row in csv.DictReader(file) if row["split"] == "val"]
    # Round-robin over classes so a small check still sees every class.
    by_class: dict[str, list[Path]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(root / row["path"])
    ordered = [paths[i] for i in range(max(map(len, by_class.values()), default=0))
               for paths in by_class.values() if i < len(paths)]
    found = [path for path in ordered if path.is_file()][:limit]
    if not found:
        raise UserError(f"none of the run's validation images are in {root} any more; "
                        "pass --data DIR with the folder the run was trained on.")
    return found


def bundle_folder(classifier: LoadedClassifier, fmt: str, output: str | None) -> Path:
    """exports/<run name>-<format>/ unless --output says otherwise; never clobbers unrelated files."""
    folder = Path(output).expanduser() if output else Path("exports") / f"{classifier.run.path.name}-{fmt}"
    ours = set(BUNDLE_FILES) | set(SPACE_FILES) | set(FORMATS.values())
    if folder.is_dir():
        strangers = [p.name for p in folder.iterdir() if p.name not in ours and not p.name.startswith(".")]
        if strangers:
            raise UserError(f"{folder} already holds other files ({', '.join(sorted(strangers)[:3])}); "
                            "pass --output with a new or empty folder.")
        for name in FORMATS.values():  # a re-export in the other format must not leave the old model
            (folder / name).unlink(missing_ok=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {folder} ({err.strerror}); pass another --output.") from None
    return folder


def normalise(classifier: LoadedClassifier, images: torch.Tensor) -> torch.Tensor:
    from {{ cookiecutter.package_name }}.data import images_to_float

    return images_to_float(images, classifier.mean, classifier.std)


# ---- writing the bundle ---------------------------------------------------------------------------
def write_model(network: torch.nn.Module, example: torch.Tensor, path: Path, fmt: str) -> None:
    """The network alone (normalised images in, logits out) as ONNX or TorchScript."""
    network = network.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (deprecations, tracer hints) is not for the user
        if fmt != "torchscript":
            # torch.export-based exporter (PyTorch's default); the batch axis stays dynamic.
            torch.onnx.export(
                network, (example,), str(path), input_names=["image"], output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False,
                verbose=False,
            )
        else:
            # Tracing records the operations run on the example; timm models have no data-dependent
            # branches at inference, so the trace is the whole model.
            with torch.no_grad():
                traced = torch.jit.trace(network, example)
            traced.save(str(path))


def preprocess_config(classifier: LoadedClassifier) -> dict:
    """Read resize/crop/interpolation off the very transform validation used, plus mean/std."""
    resize = crop = interpolation = None
    for step in classifier.transform.transforms:
        name = type(step).__name__
        if name == "Resize" and isinstance(step.size, int | list | tuple) and step.max_size is None:
            size = step.size if isinstance(step.size, int) else step.size[0] if len(step.size) == 1 else None
            if size is None:
                break
            resize, interpolation = size, step.interpolation.value
        elif name == "CenterCrop":
            crop = list(step.size)
        elif name not in ("MaybePILToTensor", "PILToTensor", "ToNumpy"):
            resize = None  # a step the bundle does not know: refuse below rather than export a lie
            break
    if resize is None or crop is None:
        raise UserError(f"this run's validation transform ({classifier.transform}) is not resize + centre crop, "
                        "which is all the bundle's predict.py can do; set crop_mode to center.")
    config = classifier.data_config
    return {
        "input_size": list(config["input_size"]),
        "resize": resize,  # shorter side, in pixels, before the crop
        "crop": crop,  # [height, width], from the centre
        "interpolation": interpolation,
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "decode_min_size": classifier.decode_size,  # JPEGs may be decoded at a reduced scale down to this
        "layout": "NCHW float32 RGB, (pixel / 255 - mean) / std",
        "backbone": classifier.backbone,
        "data_config": config,  # timm's own description, which the project's predict and demo use
    }


def bundle_script(name: str = "bundle_predict.py") -> str:
    """The source of a file the bundle gets a copy of (bundle_predict.py, space_app.py, serving.py)."""
    return importlib.resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def write_space_files(folder: Path) -> None:
    """app.py, serving.py and requirements.txt: the rest of a Hugging Face Space around the ONNX bundle."""
    (folder / "app.py").write_text(bundle_script("space_app.py"), encoding="utf-8")
    (folder / "serving.py").write_text(bundle_script("serving.py"), encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(SPACE_REQUIREMENTS) + "\n", encoding="utf-8")


def load_bundle_script(bundle: Path) -> ModuleType:
    """Import the bundle's predict.py, to check the code its users will run."""
    spec = importlib.util.spec_from_file_location(f"bundle_predict_{abs(hash(str(bundle)))}", bundle / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = bundle
    return module


# ---- checking it -----------------------------------------------------------------------------------
def check_parity(classifier: LoadedClassifier, bundle: Path, images: list[Path], fmt: str) -> ExportReport:
    """PyTorch (project preprocessing) vs the export (bundle preprocessing) on the same files."""
    script = load_bundle_script(bundle)
    model = script.Model(bundle)
    pixels_identical, max_diff, max_logit, agree = True, 0.0, 0.0, 0
    for start in range(0, len(images), 16):
        files = images[start:start + 16]
        reference_input = normalise(classifier, torch.stack([classifier.load_image(f) for f in files]))
        bundle_input = np.stack([script.preprocess(script.load_rgb(f, model.config["decode_min_size"]),
                                                          model.config) for f in files])
        pixels_identical &= bool((reference_input.numpy() == bundle_input).all())
        with torch.inference_mode():
            reference = classifier.network(reference_input).numpy()
        exported = model.logits(bundle_input)
        max_diff = max(max_diff, float(abs(reference - exported).max()))
        max_logit = max(max_logit, float(abs(reference).max()))
        agree += int((reference.argmax(1) == exported.argmax(1)).sum())
    return ExportReport(bundle=bundle, format=fmt, images=len(images), max_abs_diff=max_diff,
                        tolerance=TOLERANCE * max(1.0, max_logit), top1_agreement=agree / len(images),
                        pixels_identical=pixels_identical, pytorch_ms=0.0, export_ms=0.0, pytorch_mb=0.0, export_mb=0.0)


def measure_latency(classifier: LoadedClassifier, bundle: Path, image: Path, runs: int, threads: int,
                    warmup: int = 5) -> tuple[float, float]:
    """Median milliseconds for one image, network only, on the CPU: PyTorch, then the export.

    Both get the same number of CPU threads, and they are timed in turns, so a busy machine slows
    both alike instead of whichever ran second.
    """
    single = normalise(classifier, classifier.load_image(image)[None])
    model = load_bundle_script(bundle).Model(bundle, threads)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    array = single.numpy()
    timings: dict[str, list[float]] = {"pytorch": [], "export": []}
    contenders = {"pytorch": lambda: classifier.network(single), "export": lambda: model.logits(array)}
    with torch.inference_mode():
        for run in range(warmup + runs):
            for name, function in contenders.items():
                started = time.perf_counter()
                function()
                if run >= warmup:
                    timings[name].append((time.perf_counter() - started) * 1000)
    torch.set_num_threads(previous_threads)
    return statistics.median(timings["pytorch"]), statistics.median(timings["export"])


def weights_megabytes(network: torch.nn.Module) -> float:
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def print_report(report: ExportReport) -> None:
    verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
    table = Table(title=f"Export check: {verdict}", title_justify="left")
    table.add_column("")
    table.add_column("PyTorch", justify="right")
    table.add_column({"onnx": "ONNX", "torchscript": "TorchScript", "space": "ONNX"}[report.format], justify="right")
    table.add_row("top-1 agreement", "", f"{report.top1_agreement:.1%} of {report.images} val images")
    table.add_row("max |logit difference|", "", f"{report.max_abs_diff:.2e} (tolerance {report.tolerance:.1e})")
    table.add_row("same input pixels", "", "yes" if report.pixels_identical else "no (preprocessing differs)")
    table.add_row(f"CPU latency, 1 image, {report.threads} thread(s)", f"{report.pytorch_ms:.2f} ms",
                  f"{report.export_ms:.2f} ms")
    table.add_row("model size", f"{report.pytorch_mb:.2f} MB", f"{report.export_mb:.2f} MB")
    console.print(table)


def bundle_readme(classifier: LoadedClassifier, report: ExportReport) -> str:
    model_file = FORMATS[report.format]
    needs = "onnxruntime numpy pillow" if report.format == "onnx" else "torch numpy pillow"
    _, height, width = classifier.data_config["input_size"]
    classes, resize = len(classifier.class_names), preprocess_config(classifier)["resize"]
    return f"""# {classifier.run.path.name}: an image classifier ({report.format})

{classifier.backbone}, fine-tuned on {len(classifier.class_names)} classes: {", ".join(classifier.class_names)}.

```bash
pip install {needs}
python predict.py photo.jpg more-photos/ --top-k 3 --csv predictions.csv
```

| file | what it is |
| --- | --- |
| `{model_file}` | the network: float32 images `[batch, 3, {height}, {width}]` in, logits `[batch, {classes}]` out |
| `labels.json` | class names, in the order of the logits |
| `preprocess.json` | shorter side to {resize} px, centre crop, then `(pixel / 255 - mean) / std` |
| `predict.py` | reads photos, prepares them as in training, prints the top classes |

Checked at export on {report.images} validation images: top-1 agreement with PyTorch
{report.top1_agreement:.1%}, largest logit difference {report.max_abs_diff:.1e}. One image on the CPU:
{report.export_ms:.1f} ms ({report.format}) vs {report.pytorch_ms:.1f} ms (PyTorch) with {report.threads} thread(s);
{report.export_mb:.1f} MB.
"""


def measurements(report: ExportReport) -> dict:
    """export.json: what the check measured, read by the demo page and the Space's app.py."""
    return {
        "format": "torchscript" if report.format == "torchscript" else "onnx",
        "cpu_ms_per_image": round(report.export_ms, 3),
        "pytorch_cpu_ms_per_image": round(report.pytorch_ms, 3),
        "threads": report.threads,
        "parity_images": report.images,
        "top1_agreement": report.top1_agreement,
        "max_abs_logit_difference": report.max_abs_diff,
        "model_mb": round(report.export_mb, 3),
    }


def space_readme(classifier: LoadedClassifier, report: ExportReport) -> str:
    """The Space's README.md: the metadata block Hugging Face reads, then how to try and publish it."""
    import importlib.metadata

    try:  # the Space runs the Gradio version this computer has, when it has one
        sdk_version = f"sdk_version: {importlib.metadata.version('gradio')}\n"
    except importlib.metadata.PackageNotFoundError:
        sdk_version = ""  # Hugging Face then picks its current Gradio
    title = json.dumps({{ cookiecutter.project_name | tojson }}, ensure_ascii=False)
    classes = classifier.class_names
    shown = ", ".join(classes[:12]) + (f" and {len(classes) - 12} more" if len(classes) > 12 else "")
    return f"""---
title: {title}
emoji: 📷
colorFrom: indigo
colorTo: green
sdk: gradio
{sdk_version}app_file: app.py
pinned: false
---

# {json.loads(title)}

{classifier.backbone}, fine-tuned on {len(classes)} classes ({shown}). Drop a photo on the page;
programs can `POST /classify` and get JSON. **One image takes {report.export_ms:.1f} ms** on the CPU
(ONNX Runtime, {report.threads} thread(s), measured by `export` on the computer that made this folder; a
free Space's CPU may be slower).

## Try it on your computer first

```bash
pip install -r requirements.txt
python app.py                                  # http://127.0.0.1:7860 (this computer only)
curl -F image=@photo.jpg http://127.0.0.1:7860/classify
```

## Publish it

With a free Hugging Face account and a token that may write (huggingface.co/settings/tokens):

```bash
pip install -U huggingface_hub
hf auth login                                                          # 1. paste the token
hf repos create <you>/<space-name> --repo-type space --space-sdk gradio    # 2. an empty Space
hf upload <you>/<space-name> . --repo-type space                          # 3. this folder, run from here
```

After a minute or two of building, your friends can open https://huggingface.co/spaces/<you>/<space-name>;
programs use `https://<you>-<space-name>.hf.space/classify`. (With git instead: clone the empty Space,
copy these files in, `git lfs track "*.onnx"`, commit, `git push`.)

## What is here

| file | what it is |
| --- | --- |
| `app.py` | the page and `POST /classify` (Gradio, ONNX Runtime; no PyTorch) |
| `serving.py` | the checks every upload passes before it is decoded |
| `predict.py` | prepares a photo as training did; also works alone: `python predict.py photo.jpg` |
| `model.onnx`, `labels.json`, `preprocess.json` | the network, its class names, its preprocessing |
| `export.json` | what `export` measured: latency, agreement with PyTorch |
| `requirements.txt` | what the Space installs |

Checked at export on {report.images} validation images: top-1 agreement with PyTorch
{report.top1_agreement:.1%}, largest logit difference {report.max_abs_diff:.1e}.

Uploads that are refused with a 4xx and a one-line JSON reason instead of being decoded: over
{MAX_UPLOAD_MB} MB, over {MAX_MEGAPIXELS} megapixels ({MAX_FULL_DECODE_MEGAPIXELS} for PNG and other formats that
must be decoded whole), animated or multi-frame files, and files that are not images. The limits are
at the top of `serving.py`.
"""
