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
The check and the timing are in parity.py, the READMEs in readmes.py.
"""

from __future__ import annotations

import importlib.resources
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from {{ cookiecutter.package_name }}.dataset.parallel import cpu_count
from {{ cookiecutter.package_name }}.errors import UsageError, UserError, shell_quote
from {{ cookiecutter.package_name }}.run_folder.finding import validation_images
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder, write_json
from {{ cookiecutter.package_name }}.sharing.extras import require
from {{ cookiecutter.package_name }}.sharing.parity import ExportReport, check_parity, measure_latency, report_table, weights_megabytes
from {{ cookiecutter.package_name }}.sharing.readmes import bundle_readme, measurements, space_readme

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt", "space": "model.onnx"}
BUNDLE_FILES = ("labels.json", "preprocess.json", "predict.py", "README.md", "export.json")
SPACE_FILES = ("app.py", "serving.py", "requirements.txt")
# What app.py imports on the Space, with the oldest versions it is written for.
# pillow-heif needs only Pillow (wheels for Linux, macOS, Windows): the Space stays torch-free and reads HEIC.
SPACE_REQUIREMENTS = ("gradio>=6.0,<7", "onnxruntime>=1.18", "numpy>=1.24.2", "pillow>=10.1", "pillow-heif>=0.16")


def check_options(fmt: str, parity_images: int = 64, latency_runs: int = 50, threads: int = 0) -> None:
    """Refuse what cannot work before the model is loaded: an unknown format, a missing [export] package."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt}.")
    if parity_images < 1 or latency_runs < 1 or threads < 0:
        raise UsageError("--parity-images and --latency-runs must be 1 or more, --threads 0 or more.")
    if fmt in ("onnx", "space"):
        require("onnx", "export")
        require("onnxscript", "export")  # PyTorch's ONNX exporter is built on it
        require("onnxruntime", "export")


def export(classifier, fmt: str = "onnx", output: str | None = None, data: str | None = None,
           parity_images: int = 64, latency_runs: int = 50, threads: int = 0) -> ExportReport:
    """Write the bundle for a run, check it against PyTorch, time both; returns the measurements.

    ``classifier``: the run's model as ``predict.load_classifier(run, accelerator="cpu")`` loads it
    (a bundle is for machines without a GPU too).
    """
    check_options(fmt, parity_images, latency_runs, threads)
    if classifier.kind != "pytorch":
        raise UserError(f"{classifier.source} is already an exported bundle; export a run folder (runs/<name>) "
                        "instead.")
    if classifier.run is None:
        raise UserError(f"{classifier.source} is not inside a run folder; export needs the run folder for its "
                        "validation images (pass runs/<name>).")
    # 1. The run's validation images (to check the bundle on) and the bundle's folder.
    images = find_validation_images(classifier.run, data, parity_images)
    bundle = bundle_folder(classifier, fmt, output)
    console = Console(soft_wrap=True)
    console.print(f"Exporting {escape(classifier.describe())} to {fmt} in [bold]{escape(str(bundle))}[/]")

    # 2. The bundle: model, labels, preprocessing, predict.py, README.
    example = torch.stack([classifier.load_image(images[0])] * 2)  # batch of 2: the batch axis stays free
    network_input = classifier.network_input(example)
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
    resize = preprocess_config(classifier)["resize"]
    readme = space_readme(classifier, report) if fmt == "space" else bundle_readme(classifier, report, resize)
    (bundle / "README.md").write_text(readme, encoding="utf-8")
    console.print(report_table(report))
    if not report.passed:
        raise UserError(
            f"the exported model does not match PyTorch (top-1 agreement {report.top1_agreement:.1%}, "
            f"max logit difference {report.max_abs_diff:.2e} > {report.tolerance:.2e}); do not use {bundle}. "
            "Try the other --format, or upgrade torch/onnx/onnxruntime."
        )
    # Paths quoted to paste into a shell, and escaped for rich: a [ in a folder name is not a style.
    if fmt == "space":
        console.print(f"Space ready: [bold]{escape(str(bundle))}[/]  (try it: cd {escape(shell_quote(bundle))} && "
                      f"pip install -r requirements.txt && python app.py; to publish it, see "
                      f"{escape(str(bundle / 'README.md'))})")
    else:
        console.print(f"Bundle ready: [bold]{escape(str(bundle))}[/]  (try: python "
                      f"{escape(shell_quote(bundle / 'predict.py'))} {escape(shell_quote(images[0]))})")
    return report


# ---- inputs --------------------------------------------------------------------------------------
def find_validation_images(run: RunFolder, data: str | None, limit: int) -> list[Path]:
    """Up to ``limit`` validation images listed in the run's splits.csv, spread over the classes."""
    if not run.splits.is_file():
        raise UserError(f"{run} has no splits.csv, so export cannot find validation images to check against.")
    found = validation_images(run, data)[:limit]
    if not found:
        root = Path(data).expanduser() if data else run.data_folder()
        raise UserError(f"none of the run's validation images are in {root} any more; "
                        "pass --data DIR with the folder the run was trained on.")
    return found


def bundle_folder(classifier, fmt: str, output: str | None) -> Path:
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


def preprocess_config(classifier) -> dict:
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
