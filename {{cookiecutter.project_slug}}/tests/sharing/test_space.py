"""export --format space: a Hugging Face Space folder, run for real on loopback without PyTorch or the project."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.predict import load_classifier
from {{ cookiecutter.package_name }}.sharing.export import export

from .. import bad_uploads
from ..conftest import run_cli
from ..loopback import free_port, gradio_call, hold_requests, multipart, post, post_file, wait_for_page

pytest.importorskip("onnxruntime", reason='export needs: pip install -e ".[export]"')
pytest.importorskip("onnxscript", reason='export needs: pip install -e ".[export]"')

SPACE_FILES = {"app.py", "serving.py", "predict.py", "model.onnx", "labels.json", "preprocess.json", "export.json",
               "requirements.txt", "README.md"}


@pytest.fixture(scope="module")
def space(trained_run: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exports") / "space"
    classifier = load_classifier(trained_run, accelerator="cpu")
    report = export(classifier, "space", str(folder), parity_images=16, latency_runs=5)
    assert report.passed
    return folder


def test_the_space_folder_has_its_files_metadata_and_publish_commands(space: Path):
    assert {p.name for p in space.iterdir()} == SPACE_FILES
    readme = (space / "README.md").read_text(encoding="utf-8")
    metadata = readme.split("---\n")[1]  # the block Hugging Face reads, between the first two --- lines
    assert readme.startswith("---\n") and "sdk: gradio\n" in metadata and "app_file: app.py\n" in metadata
    for command in ("hf auth login", "hf repos create", "--space-sdk gradio", "hf upload"):
        assert command in readme
    requirements = (space / "requirements.txt").read_text().split()
    names = {re.split(">=", line)[0] for line in requirements}
    assert names == {"gradio", "onnxruntime", "numpy", "pillow", "pillow-heif"}
    assert all(">=" in line for line in requirements) and not any("torch" in line for line in requirements)


def test_the_readme_shows_the_latency_export_measured(space: Path):
    measured = json.loads((space / "export.json").read_text())
    assert measured["cpu_ms_per_image"] > 0 and measured["top1_agreement"] == 1.0
    assert f"One image takes {measured['cpu_ms_per_image']:.1f} ms" in (space / "README.md").read_text()


def start_app(python: str, folder: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``python app.py`` in ``folder``, as the Space runs it, on a free loopback port."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # not the project's code
    env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as output:
        process = subprocess.Popen([python, "-X", "importtime", "app.py"], cwd=folder, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_page(url + "/", process, seconds=180)
    except AssertionError:
        stop(process)
        raise AssertionError(log.read_text()[-3000:]) from None
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def predicted(run: Path, photo: Path, out: Path) -> dict:
    assert run_cli("predict", str(run), str(photo), "--csv", str(out)) == 0
    with open(out, newline="") as file:
        return next(csv.DictReader(file))


def check_like_predict(url: str, run: Path, photo: Path, tmp_path: Path) -> None:
    """The Space's JSON answer for ``photo`` is the project's own ``predict`` answer."""
    status, answer = post_file(url + "/classify", photo.name, photo.read_bytes())
    assert status == 200, answer
    expected = predicted(run, photo, tmp_path / "predict.csv")
    assert answer["label"] == expected["label"]
    assert answer["probability"] == pytest.approx(float(expected["probability"]), abs=1e-3)
    assert [item["label"] for item in answer["top_k"]][1] == expected["label_2"]


def check_refusals(url: str) -> None:
    for name, data, status, said in [
        ("bomb.png", bad_uploads.flat_png(20000, 20000), 413, "400 megapixels"),
        ("notes.jpg", b"shopping list: milk, eggs", 415, "not a photo"),
        ("party.gif", bad_uploads.animated_gif(), 415, "animated"),
        ("half.jpg", bad_uploads.truncated_jpeg(), 422, "cut off"),
        ("poster.jpg", bad_uploads.eps_file(), 415, "not a photo"),
    ]:
        answer_status, answer = post_file(url + "/classify", name, data)
        assert (answer_status, answer["file"]) == (status, name) and said in answer["error"], answer
    status, answer = post_file(url + "/classify", "IMG_0001.HEIC", bad_uploads.heic_photo())
    assert status == 200, answer
    bomb = bad_uploads.gradio_payload(bad_uploads.data_url(bad_uploads.flat_png(12000, 12000)))
    assert gradio_call(url, "predict", [bomb])[0] == 413
    body, kind = multipart([(f"{i}.jpg", b"x") for i in range(1000)])
    assert post(url + "/gradio_api/upload", body, kind)[0] == 413
    held = hold_requests(url, 16)  # serving.MAX_IN_FLIGHT
    try:
        status, headers, _ = post(url + "/classify", b"x", "application/octet-stream")
        deadline = time.monotonic() + 20
        while status != 503 and time.monotonic() < deadline:
            status, headers, _ = post(url + "/classify", b"x", "application/octet-stream")
        assert status == 503 and "retry-after" in headers
    finally:
        for connection in held:
            connection.close()


def test_app_py_serves_the_page_and_classify_without_torch(space: Path, trained_run: Path, image_folder: Path,
                                                           tmp_path: Path):
    """This interpreter has everything installed, so the import log proves app.py never loads torch."""
    pytest.importorskip("gradio", reason="running the Space here needs gradio (pip install -r requirements.txt)")
    folder = shutil.copytree(space, tmp_path / "space")
    log = tmp_path / "app.log"
    process, url = start_app(sys.executable, folder, log)
    try:
        check_like_predict(url, trained_run, image_folder / "train" / "cat" / "cat_003.jpg", tmp_path)
        check_refusals(url)
    finally:
        stop(process)
    imported = {line.split("|")[-1].strip() for line in log.read_text().splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and "gradio" in imported  # the import log is really there
    assert not {name for name in imported if name == "torch" or name.startswith("torch.")}
    assert not {name for name in imported if name.startswith("{{ cookiecutter.package_name }}")}


@pytest.mark.slow
def test_app_py_runs_in_a_fresh_venv_with_only_its_requirements(space: Path, trained_run: Path, image_folder: Path,
                                                                tmp_path: Path):
    """What Hugging Face does: a clean Python, ``pip install -r requirements.txt``, ``python app.py``."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-r", str(space / "requirements.txt")],
                             capture_output=True, text=True, timeout=1200)
    if install.returncode != 0:
        offline = ("No matching distribution", "Could not find a version", "NewConnectionError",
                   "Network is unreachable", "Temporary failure in name resolution", "ProxyError")
        if any(text in install.stdout + install.stderr for text in offline):
            pytest.skip("no package index reachable to install the Space's requirements")
        raise AssertionError(install.stderr[-3000:])
    no_torch = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True, timeout=120)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    process, url = start_app(python, shutil.copytree(space, tmp_path / "space"), tmp_path / "app.log")
    try:
        check_like_predict(url, trained_run, image_folder / "train" / "fox" / "fox_004.png", tmp_path)
        check_refusals(url)
    finally:
        stop(process)
