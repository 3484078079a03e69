"""The export's proof: the bundle's own predict.py code against PyTorch on real validation images
(parity), then the CPU time of one image for both (latency), and the sizes.

``classifier`` is the run's model as ``predict.load_classifier`` loads it.
"""

from __future__ import annotations

import importlib.util
import io
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.table import Table

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


def load_bundle_script(bundle: Path) -> ModuleType:
    """Import the bundle's predict.py, to check the code its users will run."""
    spec = importlib.util.spec_from_file_location(f"bundle_predict_{abs(hash(str(bundle)))}", bundle / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = bundle
    return module


# ---- checking it -----------------------------------------------------------------------------------
def check_parity(classifier, bundle: Path, images: list[Path], fmt: str) -> ExportReport:
    """PyTorch (project preprocessing) vs the export (bundle preprocessing) on the same files."""
    script = load_bundle_script(bundle)
    model = script.Model(bundle)
    pixels_identical, max_diff, max_logit, agree = True, 0.0, 0.0, 0
    for start in range(0, len(images), 16):
        files = images[start:start + 16]
        reference_input = classifier.network_input(torch.stack([classifier.load_image(f) for f in files]))
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


def measure_latency(classifier, bundle: Path, image: Path, runs: int, threads: int,
                    warmup: int = 5) -> tuple[float, float]:
    """Median milliseconds for one image, network only, on the CPU: PyTorch, then the export.

    Both get the same number of CPU threads, and they are timed in turns, so a busy machine slows
    both alike instead of whichever ran second.
    """
    single = classifier.network_input(classifier.load_image(image)[None])
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


def report_table(report: ExportReport) -> Table:
    """What the check measured, PyTorch next to the export."""
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
    return table
