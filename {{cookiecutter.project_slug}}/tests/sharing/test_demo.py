"""demo: the Gradio page and its JSON route, started for real on loopback and asked about real images."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .. import bad_uploads
from ..conftest import CLASSES, run_cli
from ..loopback import free_port, post_file

pytest.importorskip("gradio", reason='the demo needs: pip install -e ".[demo]"')
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def post_image(url: str, path: Path) -> tuple[int, dict]:
    """POST one file as multipart/form-data field ``image``, like ``curl -F image=@path``."""
    return post_file(url, path.name, path.read_bytes())


@pytest.fixture(scope="module")
def demo(trained_run: Path):
    """The demo of the shared run, serving on a free loopback port for the tests of this file."""
    from {{ cookiecutter.package_name }}.predict import load_classifier
    from {{ cookiecutter.package_name }}.sharing.demo import serve

    port = free_port()
    page = serve(load_classifier(trained_run), port=port, block=False)
    yield f"http://127.0.0.1:{port}", page
    page.close()


def test_the_page_answers_on_loopback(demo):
    url, page = demo
    with urllib.request.urlopen(url + "/", timeout=30) as response:
        assert response.status == 200 and b"<html" in response.read().lower()
    assert page.server_name == "127.0.0.1"


def test_the_json_route_classifies_a_real_image_like_predict(demo, trained_run: Path, image_folder: Path,
                                                             tmp_path: Path):
    url, _ = demo
    photo = image_folder / "train" / "dog" / "dog_003.jpg"
    status, answer = post_image(url + "/classify", photo)
    assert status == 200
    assert answer["label"] in CLASSES and [item["label"] for item in answer["top_k"]][0] == answer["label"]
    assert sum(item["probability"] for item in answer["top_k"]) == pytest.approx(1.0, abs=1e-3)
    out = tmp_path / "same.csv"
    assert run_cli("predict", str(trained_run), str(photo), "--csv", str(out)) == 0
    assert out.read_text().splitlines()[1].split(",")[1] == answer["label"]


def test_a_text_file_gets_a_clear_message_not_a_stack_trace(demo, tmp_path: Path):
    url, _ = demo
    fake = tmp_path / "cat.jpg"
    fake.write_text("I am not a picture")
    status, answer = post_image(url + "/classify", fake)
    assert status == 415 and "not a photo" in answer["error"] and answer["file"] == "cat.jpg"


@pytest.mark.parametrize(("name", "data", "status", "said"), [
    ("bomb.png", lambda: bad_uploads.flat_png(20000, 20000), 413, "400 megapixels"),
    ("panorama.jpg", lambda: bad_uploads.jpeg_claiming(16000, 9000), 413, "16000 x 9000 pixels (144 megapixels)"),
    ("party.gif", bad_uploads.animated_gif, 415, "animated"),
    ("half.jpg", bad_uploads.truncated_jpeg, 422, "cut off"),
    ("huge.jpg", lambda: b"\xff\xd8\xff" + bytes(21_000_000), 413, "MB; the limit is"),
])
def test_uploads_we_will_not_decode_get_a_4xx_and_one_line(demo, name: str, data, status: int, said: str):
    url, _ = demo
    answer_status, answer = post_file(url + "/classify", name, data())
    assert answer_status == status and said in answer["error"] and "\n" not in answer["error"]


def test_a_request_without_an_image_field_says_how_to_send_one(demo):
    url, _ = demo
    status, answer = post_file(url + "/classify", "photo.jpg", bad_uploads.photo_jpeg(), field="file")
    assert status == 400 and "curl -F image=@photo.jpg" in answer["error"]


def test_a_burst_of_parallel_requests_is_answered_in_full(demo, image_folder: Path):
    """20 at once, a few of them bad: every one answered, 200 or 4xx, never 500."""
    url, _ = demo
    photo = (image_folder / "train" / "dog" / "dog_003.jpg").read_bytes()
    bad = [("notes.jpg", b"not a photo")] * 2 + [("party.gif", bad_uploads.animated_gif())] * 2
    uploads = [("photo.jpg", photo)] * 16 + bad
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda upload: post_file(url + "/classify", *upload), uploads))
    assert [status for status, _ in answers] == [200] * 16 + [415] * 4
    assert len({answer["label"] for _, answer in answers[:16]}) == 1  # the same photo, the same answer


def test_gradio_api_gives_the_same_answer_and_the_page_explains_bad_uploads(demo, image_folder: Path,
                                                                            tmp_path: Path):
    from gradio_client import Client, handle_file

    url, _ = demo
    client = Client(url, verbose=False)
    photo = image_folder / "train" / "fox" / "fox_004.png"
    result = client.predict(handle_file(str(photo)), api_name="/predict")
    assert result["label"] == post_image(url + "/classify", photo)[1]["label"]
    fake = tmp_path / "fox.png"
    fake.write_text("not a picture either")
    with pytest.raises(Exception, match="not a photo"):
        client.predict(handle_file(str(fake)), api_name="/predict")
    bomb = bad_uploads.write(tmp_path, "bomb.png", bad_uploads.flat_png(20000, 20000))
    with pytest.raises(Exception, match="400 megapixels"):
        client.predict(handle_file(str(bomb)), api_name="/predict")


def test_the_page_shows_how_long_one_image_takes(demo):
    url, page = demo
    with urllib.request.urlopen(url + "/config", timeout=30) as response:
        config = response.read().decode()
    assert "One image takes" in config and " ms on cpu" in config


def test_examples_come_from_the_runs_validation_split(trained_run: Path):
    from {{ cookiecutter.package_name }}.predict import load_classifier
    from {{ cookiecutter.package_name }}.sharing.demo import example_images

    examples = example_images(load_classifier(trained_run, accelerator="cpu"))
    rows = (trained_run / "splits.csv").read_text().splitlines()[1:]
    val = {row.split(",")[0] for row in rows if row.endswith(",val")}
    assert examples and all(any(example.endswith(path) for path in val) for example in examples)
    assert {Path(example).parent.name for example in examples} == set(CLASSES)  # every class shown


def own_network_address() -> str | None:
    """This machine's address on its network (a UDP "connect" sends nothing), or None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.slow
def test_the_demo_command_listens_on_loopback_only(trained_run: Path):
    """``demo --port N`` in its own process: HTTP 200 on 127.0.0.1 within a minute, nothing on other addresses."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen([sys.executable, "-m", "{{ cookiecutter.package_name }}", "demo", str(trained_run),
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status = response.status
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        assert status == 200
        address = own_network_address()
        if address:  # the same port on this machine's network address must not answer
            with socket.socket() as probe, pytest.raises(OSError):
                probe.settimeout(2)
                probe.connect((address, port))
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
