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
from ..loopback import free_port, gradio_call, hold_requests, multipart, post, post_file

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
    ("poster.jpg", bad_uploads.eps_file, 415, "not a photo"),
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
    """As many at once as the server takes in flight, a few of them bad: every one answered, 200 or 4xx."""
    from {{ cookiecutter.package_name }}.sharing.serving import MAX_IN_FLIGHT

    url, _ = demo
    photo = (image_folder / "train" / "dog" / "dog_003.jpg").read_bytes()
    bad = [("notes.jpg", b"not a photo")] * 2 + [("party.gif", bad_uploads.animated_gif())] * 2
    uploads = [("photo.jpg", photo)] * (MAX_IN_FLIGHT - 4) + bad
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT) as pool:
        answers = list(pool.map(lambda upload: post_file(url + "/classify", *upload), uploads))
    assert [status for status, _ in answers] == [200] * (MAX_IN_FLIGHT - 4) + [415] * 4
    assert len({answer["label"] for _, answer in answers[:-4]}) == 1  # the same photo, the same answer


def test_beyond_the_requests_in_flight_the_answer_is_503_with_retry_after(demo):
    from {{ cookiecutter.package_name }}.sharing.serving import MAX_IN_FLIGHT

    url, _ = demo
    held = hold_requests(url, MAX_IN_FLIGHT)
    try:
        deadline, status = time.monotonic() + 20, None
        while status != 503 and time.monotonic() < deadline:  # until the server has taken in all the held ones
            status, headers, text = post(url + "/classify", b"x", "application/octet-stream")
        assert status == 503 and int(headers["retry-after"]) > 0 and "busy" in text
    finally:
        for connection in held:
            connection.close()
    time.sleep(1)  # the server notices the closed connections
    assert post_file(url + "/classify", "photo.jpg", bad_uploads.photo_jpeg())[0] == 200


def test_a_heic_photo_is_classified_by_the_route_and_the_page(demo, tmp_path: Path):
    from gradio_client import Client, handle_file

    url, _ = demo
    status, answer = post_file(url + "/classify", "IMG_0001.HEIC", bad_uploads.heic_photo())
    assert status == 200 and answer["label"] in CLASSES
    photo = bad_uploads.write(tmp_path, "IMG_0001.HEIC", bad_uploads.heic_photo())
    assert Client(url, verbose=False).predict(handle_file(str(photo)), api_name="/predict")["label"] == answer["label"]


def test_gradio_api_refuses_data_url_bombs_and_uploads_of_many_files(demo):
    url, _ = demo
    bomb = bad_uploads.data_url(bad_uploads.flat_png(12000, 12000))  # 144 megapixels in a 190 KB request
    status, text = gradio_call(url, "predict", [bad_uploads.gradio_payload(bomb)])
    assert status == 413 and "data: URLs" in text
    for small in (bad_uploads.flat_png(20000, 20000)[:3000], bad_uploads.eps_file()):  # small enough to get in
        status, text = gradio_call(url, "predict", [bad_uploads.gradio_payload(bad_uploads.data_url(small))])
        assert status == 200 and "event: error" in text  # refused, never decoded (serving.payload_bytes, or Gradio)
    body, kind = multipart([(f"{i}.jpg", b"x") for i in range(1000)])
    status, _, text = post(url + "/gradio_api/upload", body, kind)
    assert status == 413 and "1000 files" in text
    body, kind = multipart([("photo.jpg", bad_uploads.photo_jpeg())])
    assert post(url + "/gradio_api/upload", body, kind)[0] == 200  # one photo, as the page sends it


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
