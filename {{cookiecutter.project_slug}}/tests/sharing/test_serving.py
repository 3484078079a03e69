"""serving: every upload is checked from its header before it is decoded, and refused with a 4xx and one sentence."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package_name }}.dataset.decode import load_rgb
from {{ cookiecutter.package_name }}.sharing import serving
from {{ cookiecutter.package_name }}.sharing.serving import MAX_UPLOAD_MB, Refusal, check_upload, decode_upload

from .. import bad_uploads


def refusal(data: bytes) -> Refusal:
    with pytest.raises(Refusal) as caught:
        decode_upload(data, 64, load_rgb)
    assert "\n" not in caught.value.reason  # one line
    return caught.value


def test_a_decompression_bomb_is_too_large_with_its_size_not_an_error():
    bomb = bad_uploads.flat_png(20000, 20000)  # 400 megapixels in under 400 KB
    assert len(bomb) < 500_000
    refused = refusal(bomb)
    assert refused.status == 413 and "400 megapixels" in refused.reason and "Downscale" in refused.reason


@pytest.mark.parametrize(("data", "said"), [
    (lambda: bad_uploads.jpeg_claiming(12000, 10000), "12000 x 10000 pixels (120 megapixels); the limit is 100"),
    (lambda: bad_uploads.flat_png(8000, 6000), "(48 megapixels); the limit for PNG is 36"),
    (lambda: bad_uploads.jpeg_claiming(7000, 6000, progressive=True), "the limit for progressive JPEG is 36"),
])
def test_too_many_pixels_is_413_with_the_size_and_the_limit(data, said: str):
    refused = refusal(data())
    assert refused.status == 413 and said in refused.reason


def test_too_many_bytes_is_413_before_pillow_sees_them():
    refused = refusal(b"\xff\xd8\xff" + bytes(MAX_UPLOAD_MB * 1_000_000))
    assert refused.status == 413 and f"the limit is {MAX_UPLOAD_MB} MB" in refused.reason


@pytest.mark.parametrize(("data", "status", "said"), [
    (b"I am not a picture", 415, "not a photo"),
    (b"", 415, "not a photo"),
    (bad_uploads.animated_gif(), 415, "animated"),
    (bad_uploads.truncated_jpeg(), 422, "damaged or cut off"),
])
def test_files_that_are_not_one_still_photo_are_refused(data: bytes, status: int, said: str):
    refused = refusal(data)
    assert refused.status == status and said in refused.reason


def test_a_big_jpeg_is_decoded_at_a_fraction_of_its_size():
    """Memory follows the model's input: 4000 x 3000 is decoded at 1/8 when 64 px are needed."""
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((4000, 3000)).convert("RGB").save(buffer, "JPEG")
    image = decode_upload(buffer.getvalue(), 64, load_rgb)
    assert image.size == (500, 375) and image.mode == "RGB"


def test_an_accepted_upload_gives_exactly_what_predict_reads_from_disk(tmp_path):
    path = bad_uploads.write(tmp_path, "photo.jpg", bad_uploads.photo_jpeg(900, 700))
    check_upload(path.read_bytes())  # no refusal
    uploaded = decode_upload(path.read_bytes(), 128, load_rgb)
    assert np.array_equal(np.asarray(uploaded), np.asarray(load_rgb(path, 128)))


def test_the_readme_states_the_limits_serving_applies():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"files over {serving.MAX_UPLOAD_MB} MB, over {serving.MAX_MEGAPIXELS} megapixels" in readme
    assert f"({serving.MAX_FULL_DECODE_MEGAPIXELS} for PNG, WebP and progressive JPEG" in readme
    assert f"beyond {serving.MAX_IN_FLIGHT} requests at once the answer" in readme


def test_an_eps_file_is_never_handed_to_ghostscript_but_refused_as_415(monkeypatch):
    from PIL import EpsImagePlugin

    def ghostscript(*args, **kwargs):  # what Pillow would run to decode it
        raise AssertionError("Ghostscript was asked to run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    refused = refusal(bad_uploads.eps_file())
    assert refused.status == 415 and "not a photo" in refused.reason


def test_a_heic_photo_is_read_like_any_photo():
    image = decode_upload(bad_uploads.heic_photo(160, 120), 64, load_rgb)
    assert image.size == (160, 120) and image.mode == "RGB"


class Payload:
    """What Gradio hands the image component: a file it stored (``path``), or a ``data:`` URL."""

    def __init__(self, path: str = "", url: str | None = None):
        self.path, self.url = path, url


def test_a_data_url_is_decoded_here_with_a_size_cap_and_a_file_is_read_with_one(tmp_path):
    photo = bad_uploads.photo_jpeg()
    assert serving.payload_bytes(Payload(url=bad_uploads.data_url(photo, "image/jpeg"))) == photo
    with pytest.raises(Refusal) as caught:
        serving.payload_bytes(Payload(url="data:image/png;base64," + "A" * (MAX_UPLOAD_MB * 1_400_000)))
    assert caught.value.status == 413
    with pytest.raises(Refusal) as caught:
        serving.payload_bytes(Payload(url="data:image/png;base64,not base64!"))
    assert caught.value.status == 415
    big = tmp_path / "big.jpg"
    with open(big, "wb") as file:
        file.truncate(MAX_UPLOAD_MB * 1_000_000 + 1)  # sparse: no disk used
    with pytest.raises(Refusal) as caught:
        serving.payload_bytes(Payload(path=str(big)))
    assert caught.value.status == 413
    assert serving.payload_bytes(Payload(path=str(bad_uploads.write(tmp_path, "a.jpg", photo)))) == photo


def test_a_16_bit_scan_converts_right_without_a_float64_copy():
    """The grey levels come out right, and the conversion's peak memory stays under 10 bytes a pixel
    (one float64 copy alone would be 8, and the arithmetic on it made three more)."""
    import tracemalloc

    from {{ cookiecutter.package_name }}.dataset.decode import to_rgb

    levels = np.array([[0, 65535], [32768, 257]], dtype=np.uint16)
    assert np.asarray(to_rgb(Image.fromarray(levels)))[..., 0].tolist() == [[0, 255], [128, 1]]
    scan = Image.fromarray(np.full((2000, 2000), 40000, dtype=np.uint16))
    tracemalloc.start()
    try:
        grey = to_rgb(scan)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grey.getpixel((0, 0)) == (156, 156, 156) and peak < 10 * 2000 * 2000
