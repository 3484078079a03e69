"""export: a real ONNX export of a trained run, checked against PyTorch, usable without PyTorch."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from {{ cookiecutter.package_name }}.dataset.decode import BACKGROUND
from {{ cookiecutter.package_name }}.dataset.files import IMAGE_EXTENSIONS
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.predict import load_classifier
from {{ cookiecutter.package_name }}.sharing.export import export
from {{ cookiecutter.package_name }}.sharing.parity import check_parity, load_bundle_script

from ..conftest import CLASSES, run_cli

pytest.importorskip("onnxruntime", reason='export needs: pip install -e ".[export]"')
pytest.importorskip("onnxscript", reason='export needs: pip install -e ".[export]"')


@pytest.fixture(scope="module")
def onnx_bundle(trained_run: Path, tmp_path_factory) -> tuple[Path, object]:
    """One real ONNX export of the shared run, with its report."""
    folder = tmp_path_factory.mktemp("exports") / "onnx"
    classifier = load_classifier(trained_run, accelerator="cpu")
    report = export(classifier, "onnx", str(folder), parity_images=16, latency_runs=5)
    return folder, report


def test_the_bundle_has_every_file_and_a_dynamic_batch_axis(onnx_bundle, trained_run: Path):
    import onnxruntime

    folder, _ = onnx_bundle
    assert {p.name for p in folder.iterdir()} == {"model.onnx", "labels.json", "preprocess.json", "predict.py",
                                                  "README.md", "export.json"}
    assert json.loads((folder / "labels.json").read_text()) == json.loads((trained_run / "labels.json").read_text())
    preprocess = json.loads((folder / "preprocess.json").read_text())
    assert {"input_size", "resize", "crop", "mean", "std", "interpolation"} <= set(preprocess)
    assert preprocess["crop"] == [32, 32] and preprocess["resize"] == int(32 / preprocess["data_config"]["crop_pct"])
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a named, free batch axis
    logits = session.run(None, {"image": np.zeros((5, 3, 32, 32), np.float32)})[0]
    assert logits.shape == (5, len(CLASSES))


def test_the_parity_check_passes_on_real_validation_images(onnx_bundle, trained_run: Path):
    _, report = onnx_bundle
    assert report.passed and report.top1_agreement == 1.0
    assert report.images == min(16, len(_val_images(trained_run)))  # every val image, up to the limit
    assert report.pixels_identical  # the numpy preprocessing rebuilt timm's eval transform exactly
    assert report.max_abs_diff <= report.tolerance
    assert report.pytorch_ms > 0 and report.export_ms > 0 and report.export_mb > 0.1


def test_the_parity_check_catches_a_wrong_bundle(onnx_bundle, trained_run: Path, tmp_path: Path):
    """A bundle with the wrong normalisation must fail the check, or the check proves nothing."""
    folder = tmp_path / "broken"
    shutil.copytree(onnx_bundle[0], folder)
    preprocess = json.loads((folder / "preprocess.json").read_text())
    preprocess["mean"], preprocess["std"] = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    (folder / "preprocess.json").write_text(json.dumps(preprocess))
    classifier = load_classifier(trained_run, accelerator="cpu")
    val = [Path(p) for p in _val_images(trained_run)[:8]]
    report = check_parity(classifier, folder, val, "onnx")
    assert not report.pixels_identical and report.max_abs_diff > report.tolerance and not report.passed


def _val_images(run: Path) -> list[str]:
    import yaml

    root = Path(yaml.safe_load((run / "config.yaml").read_text())["data"])
    with open(run / "splits.csv", newline="") as file:
        return [str(root / row["path"]) for row in csv.DictReader(file) if row["split"] == "val"]


def test_the_bundle_script_runs_without_torch_and_agrees_with_predict(onnx_bundle, trained_run: Path,
                                                                      tmp_path: Path):
    """python bundle/predict.py in a fresh process: same labels as predict, and torch never imported."""
    folder, _ = onnx_bundle
    images = _val_images(trained_run)
    bundle_csv, project_csv = tmp_path / "bundle.csv", tmp_path / "project.csv"
    done = subprocess.run([sys.executable, "-X", "importtime", str(folder / "predict.py"), *images,
                           "--csv", str(bundle_csv)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported  # the import log is really there
    assert not {name for name in imported if name == "torch" or name.startswith("torch.")}
    assert run_cli("predict", str(trained_run), *images, "--csv", str(project_csv)) == 0

    def labels(path: Path) -> dict[str, str]:
        with open(path, newline="") as file:
            return {row["path"]: row["label"] for row in csv.DictReader(file)}

    assert labels(bundle_csv) == labels(project_csv)
    with open(bundle_csv, newline="") as file:
        assert next(csv.reader(file))[:3] == ["path", "label", "probability"]


def tricky_images(folder: Path) -> list[Path]:
    """Files that exercise every branch of image loading: alpha, palette, 16-bit, EXIF, big JPEG, portrait, HEIC."""
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.new("RGB", (90, 60), (30, 90, 200))
    ImageDraw.Draw(base).ellipse([10, 5, 70, 50], fill=(220, 200, 20))
    files = {}
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    files["alpha.png"] = rgba
    files["palette.gif"] = base.convert("P", palette=Image.Palette.ADAPTIVE)
    files["grey16.png"] = Image.fromarray((np.arange(60 * 90).reshape(60, 90) * 12).astype(np.uint16))
    files["portrait.jpg"] = base.rotate(90, expand=True).resize((300, 700))
    files["big.jpg"] = base.resize((1600, 1200))
    files["iphone.heic"] = base.resize((400, 300))
    paths = []
    for name, image in files.items():
        image.save(folder / name, format="HEIF" if name.endswith(".heic") else None)
        paths.append(folder / name)
    rotated = base.copy()
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees": what phones write instead of turning the pixels
    rotated.save(folder / "rotated.jpg", exif=exif)
    return [*paths, folder / "rotated.jpg"]


def test_the_bundle_prepares_images_exactly_like_the_project(onnx_bundle, trained_run: Path, tmp_path: Path):
    """Its standalone copy of the image loading and timm's eval transform gives identical pixels."""
    folder, _ = onnx_bundle
    script = load_bundle_script(folder)
    classifier = load_classifier(trained_run, accelerator="cpu")
    assert script.IMAGE_EXTENSIONS == IMAGE_EXTENSIONS and script.BACKGROUND == BACKGROUND
    config = json.loads((folder / "preprocess.json").read_text())
    mean, std = classifier.mean[0], classifier.std[0]
    for path in tricky_images(tmp_path):
        expected = ((classifier.load_image(path).float() / 255.0 - mean) / std).numpy()
        actual = script.preprocess(script.load_rgb(path, config["decode_min_size"]), config)
        assert np.array_equal(expected, actual), path.name


def test_project_predict_reads_the_bundle_too(onnx_bundle, image_folder: Path, tmp_path: Path):
    out = tmp_path / "from-bundle.csv"
    assert run_cli("predict", str(onnx_bundle[0]), str(image_folder / "train" / "fox"), "--csv", str(out)) == 0
    with open(out, newline="") as file:
        assert len(list(csv.DictReader(file))) == len(list((image_folder / "train" / "fox").iterdir()))


@pytest.mark.slow
def test_torchscript_export_passes_the_same_check(trained_run: Path, tmp_path: Path):
    classifier = load_classifier(trained_run, accelerator="cpu")
    report = export(classifier, "torchscript", str(tmp_path / "ts"), parity_images=8, latency_runs=3)
    assert report.passed and (tmp_path / "ts" / "model.pt").is_file()


def test_the_printed_command_pastes_whole_into_a_shell(trained_run: Path, tmp_path: Path, capsys):
    """A bundle folder with a space and brackets (a file pattern to zsh, a style to rich) is printed whole,
    and the "try:" command reads back, as a shell splits it, as predict.py and a real photo."""
    folder = tmp_path / "my [best] model"
    export(load_classifier(trained_run, accelerator="cpu"), "onnx", str(folder), parity_images=2, latency_runs=1)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Bundle ready"))
    assert str(folder) in line
    argv = shlex.split(line.split("(try: ", 1)[1].rsplit(")", 1)[0])
    assert argv[:2] == ["python", str(folder / "predict.py")] and Path(argv[2]).is_file() and len(argv) == 3


def test_export_will_not_write_into_a_folder_of_other_files(trained_run: Path, tmp_path: Path, capsys):
    (tmp_path / "thesis.docx").write_text("precious")
    assert run_cli("export", str(trained_run), "--output", str(tmp_path)) == 1
    assert "other files" in capsys.readouterr().err and (tmp_path / "thesis.docx").exists()


def test_export_asks_for_data_when_the_dataset_moved(trained_run: Path, tmp_path: Path):
    with pytest.raises(UserError, match="--data"):
        export(load_classifier(trained_run, accelerator="cpu"), "onnx", str(tmp_path / "out"),
               data=str(tmp_path / "gone"))


def test_a_missing_extra_names_the_pip_command(trained_run: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    assert run_cli("export", str(trained_run), "--output", str(tmp_path / "out")) == 1
    assert 'pip install -e ".[export]"' in capsys.readouterr().err
