"""What the demo and the Hugging Face Space serve: the web page, ``POST /classify``, and the checks
every upload passes before it is decoded.

    curl -F image=@photo.jpg http://127.0.0.1:7860/classify
    # 200 {"label": "cat", "probability": 0.93, "top_k": [{"label": "cat", "probability": 0.93}, ...]}
    # 413 {"error": "The image is 16000 x 9000 pixels (144 megapixels); the limit is 100 ...", "file": "pano.jpg"}

People send anything to a public page: a 400-megapixel PNG of 388 KB (a decompression bomb), a
panorama, a renamed text file, an animated GIF. ``check_upload`` reads only the file's header and
refuses those with a 4xx status and one sentence (``Refusal``); nothing here answers 500. JPEGs are
decoded at a reduced scale (Pillow's ``draft``: 1/2, 1/4 or 1/8, still at least twice the model's
input), so a big photo costs memory in proportion to the model, not to the photo. PNG, WebP and
progressive JPEGs cannot be decoded smaller, so they get a lower pixel limit. At most
``DECODE_SLOTS`` uploads are decoded at the same time, so a burst of requests cannot add up.

Only Pillow is imported at the top (Gradio and FastAPI when the page is built): ``export --format
space`` copies this file next to the Space's app.py, which has no PyTorch and no project installed.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route's type hints at run time.
import io
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image

# Edit here: what the page and /classify accept.
MAX_UPLOAD_MB = 20  # phone photos are 2-12 MB
MAX_MEGAPIXELS = 100  # any format: a 48-megapixel phone photo fits, a 400-megapixel bomb does not
MAX_FULL_DECODE_MEGAPIXELS = 36  # PNG, WebP, ... are decoded whole (an 8K screenshot is 33 megapixels)
DECODE_SLOTS = 2  # uploads decoded at once; the others wait their turn
MULTIPART_SLACK = 64 * 1024  # bytes of form headers around the photo in a multipart body
DRAIN_FACTOR = 5  # an upload up to this many times the limit is read (and dropped) before it is refused

DRAFTABLE = ("JPEG", "MPO")  # MPO: a JPEG with extra pictures inside (some phones and cameras write it)
NOT_A_PHOTO = "This file is not a photo we can read. Try a JPEG, PNG, WebP, BMP, GIF or TIFF image."
DOWNSCALE = "Downscale it (for example to 4000 pixels on the long side) and try again."
_slots = threading.BoundedSemaphore(DECODE_SLOTS)


class Refusal(Exception):
    """An upload we will not decode: ``status`` is the HTTP code, ``reason`` the sentence for people."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def check_upload(data: bytes) -> None:
    """Raise ``Refusal`` unless ``data`` is one still picture small enough to decode. Reads the header only."""
    if len(data) > MAX_UPLOAD_MB * 1_000_000:
        raise Refusal(413, f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_MB} MB. {DOWNSCALE}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
            # Progressive JPEGs keep every coefficient of the whole picture while decoding, even drafted.
            drafted = kind in DRAFTABLE and not image.info.get("progressive")
            animated = kind not in DRAFTABLE and getattr(image, "is_animated", False)
    except Image.DecompressionBombError as err:  # Pillow's own guard (about 179 megapixels) fired first
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
        raise Refusal(413, f"The image has {size}; the limit is {MAX_MEGAPIXELS} megapixels. {DOWNSCALE}") from None
    except Exception:  # UnidentifiedImageError, or a header too damaged to read
        raise Refusal(415, NOT_A_PHOTO) from None
    if animated:
        raise Refusal(415, "This is an animated or multi-frame image; upload a single still photo (a JPEG or PNG).")
    limit = MAX_MEGAPIXELS if drafted else MAX_FULL_DECODE_MEGAPIXELS
    if width * height > limit * 1_000_000:
        which = "" if drafted else f" for {'progressive ' if kind in DRAFTABLE else ''}{kind or 'this format'}"
        raise Refusal(413, f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
                           f"the limit{which} is {limit} megapixels. {DOWNSCALE}")


def decode_upload(data: bytes, min_size: int | None, load: Callable[[io.BytesIO, int | None], Image.Image]):
    """``check_upload``, then decode with ``load`` (the same loader ``predict`` uses, so the answers agree).

    A file whose header is fine but whose pixels are damaged or cut off is refused with 422.
    """
    check_upload(data)
    with _slots:
        try:
            return load(io.BytesIO(data), min_size)
        except Exception as err:  # Pillow raises OSError, SyntaxError, struct.error, ... for damaged data
            raise Refusal(422, f"This photo is damaged or cut off ({type(err).__name__}); "
                               "try another copy of it.") from None


# ---- the page -----------------------------------------------------------------------------------------
def build_page(title: str, classes: list[str], classify: Callable[[bytes], dict[str, float]], top_k: int,
               footer: str, examples: list[str] | None = None):
    """The Gradio page: a photo on the left, the top classes on the right, examples underneath.

    ``classify`` takes the file's bytes and returns {class: probability}, or raises ``Refusal``.
    """
    import gradio as gr

    shown = ", ".join(classes[:12]) + (f" and {len(classes) - 12} more" if len(classes) > 12 else "")
    with gr.Blocks(title=title) as page:
        gr.Markdown(f"# {title}\nDrop a photo (or click to upload one) and the model tells you what it sees. "
                    f"It knows {len(classes)} classes: {shown}.")
        with gr.Row(equal_height=True):
            # image_mode=None: Gradio hands over the uploaded file as it is instead of decoding it itself.
            photo = gr.Image(type="filepath", image_mode=None, label="Your photo", sources=["upload", "clipboard"],
                             height=360)
            answer = gr.Label(num_top_classes=top_k, label="What the model thinks")

        def predict(image_path: str | None) -> dict[str, float] | None:
            if not image_path:
                return None
            try:
                return classify(Path(image_path).read_bytes())
            except Refusal as refusal:
                raise gr.Error(refusal.reason) from None

        # Gradio opens the upload with Pillow before ``predict`` sees it; a bomb or a text file renamed
        # .jpg would end there as a bare "Error". Checking the header first gives the same sentence as /classify.
        preprocess = photo.preprocess

        def checked_preprocess(payload):
            try:
                if payload is not None and payload.path:
                    check_upload(Path(payload.path).read_bytes())
                return preprocess(payload)
            except Refusal as refusal:
                raise gr.Error(refusal.reason) from None
            except (OSError, ValueError):
                raise gr.Error(NOT_A_PHOTO) from None

        photo.preprocess = checked_preprocess
        photo.change(predict, inputs=photo, outputs=answer, api_name="predict")
        if examples:
            gr.Examples(examples=examples, inputs=photo, label="Or click a photo from the validation set",
                        examples_per_page=len(examples))
        gr.Markdown(f"<small>{footer}</small>")
    return page


# ---- the JSON route -----------------------------------------------------------------------------------
def classify_route(classify: Callable[[bytes], dict[str, float]]):
    """POST /classify with a multipart ``image`` field -> {"label", "probability", "top_k": [...]}.

    Refusals answer their 4xx status with {"error": one sentence, "file": the upload's name}.
    """
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    limit = MAX_UPLOAD_MB * 1_000_000

    def refuse(status: int, reason: str, name: str | None = None) -> JSONResponse:
        return JSONResponse({"error": reason, "file": name}, status_code=status)

    async def classify_upload(request: Request) -> JSONResponse:
        # The body is refused before it is read when it says it is too big.
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return refuse(411, "Send the photo with a Content-Length, as a form upload: curl -F image=@photo.jpg URL")
        if int(length) > limit + MULTIPART_SLACK:
            # A browser sends the whole body before it reads the answer: up to a few times the limit is read
            # and dropped (never kept), so it shows this sentence instead of "connection reset". curl asks
            # first (Expect: 100-continue) and gets the answer without uploading anything.
            if int(length) <= DRAIN_FACTOR * limit and request.headers.get("expect", "").lower() != "100-continue":
                async for _ in request.stream():
                    pass
            size = f"{int(length) / 1e6:.1f} MB"
            return refuse(413, f"The upload is {size}; the limit is {MAX_UPLOAD_MB} MB. {DOWNSCALE}")
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception:  # a malformed multipart body (Starlette's MultiPartException or HTTPException)
            return refuse(400, "The request is not a valid form upload; send it like: curl -F image=@photo.jpg URL")
        try:
            upload = form.get("image")
            if not isinstance(upload, UploadFile):
                return refuse(400, 'Send the photo in a form field named "image": curl -F image=@photo.jpg URL')
            data = await upload.read(limit + 1)
            try:
                # Decoding and the model run in a worker thread, so the server keeps answering meanwhile.
                scores = await run_in_threadpool(classify, data)
            except Refusal as refusal:
                return refuse(refusal.status, refusal.reason, upload.filename)
        finally:
            await form.close()
        top = [{"label": label, "probability": p} for label, p in scores.items()]
        return JSONResponse({"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})

    return APIRoute("/classify", classify_upload, methods=["POST"])


def launch(page, classify: Callable[[bytes], dict[str, float]], host: str, port: int, share: bool = False,
           allowed_paths: list[str] | None = None):
    """Start the page and /classify on ``host:port`` without blocking; OSError if the port is taken.

    The route is handed to the FastAPI app Gradio creates (``app_kwargs``), so it answers from the
    first request on; added after ``launch`` it would 404 until launch had finished its own checks.
    Pillow's warning about big pictures (from 89 megapixels) is turned off for the server's life: the
    limits above decide instead, so the server log stays readable.
    """
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, show_error=True,
                quiet=True, max_file_size=MAX_UPLOAD_MB * 1_000_000, allowed_paths=allowed_paths or [],
                app_kwargs={"routes": [classify_route(classify)]})
    return page
