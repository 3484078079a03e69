"""What the demo and the Hugging Face Space serve: the web page, ``POST /classify``, and the checks
every upload passes before it is decoded.

    curl -F image=@photo.jpg http://127.0.0.1:7860/classify
    # 200 {"label": "cat", "probability": 0.93, "top_k": [{"label": "cat", "probability": 0.93}, ...]}
    # 413 {"error": "The image is 16000 x 9000 pixels (144 megapixels); the limit is 100 ...", "file": "pano.jpg"}

People send anything to a public page: a 400-megapixel PNG of 388 KB (a decompression bomb), a
panorama, a renamed text file, an EPS file (Pillow would run Ghostscript on it), an animated GIF.
``check_upload`` opens only the photo formats in ``PHOTO_FORMATS``, reads only the file's header and
refuses the rest with a 4xx status and one sentence (``Refusal``); nothing here answers 500.
Every way in passes the same checks: ``/classify``, the page (files uploaded through Gradio, and
``data:`` URLs, which are decoded here, never by Gradio), and ``RequestLimits`` in front of all of
them: a cap on requests in flight (503), on body sizes and on files per upload (413). JPEGs are
decoded at a reduced scale (Pillow's ``draft``: 1/2, 1/4 or 1/8, still at least twice the model's
input), so a big photo costs memory in proportion to the model, not to the photo. PNG, WebP and
progressive JPEGs cannot be decoded smaller, so they get a lower pixel limit. At most
``DECODE_SLOTS`` uploads are decoded at the same time, so a burst of requests cannot add up.

Only Pillow is imported at the top (Gradio and FastAPI when the page is built): ``export --format
space`` copies this file next to the Space's app.py, which has no PyTorch and no project installed.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route's type hints at run time.
import asyncio
import base64
import binascii
import io
import json
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image

try:  # HEIC/HEIF (iPhones); AVIF is built into Pillow's own wheels (11.3 and later)
    from pillow_heif import register_heif_opener
except ImportError:  # HEIC uploads are then refused as "not a photo we can read"
    register_heif_opener = None
else:
    register_heif_opener()
Image.init()

# Edit here: what the page and /classify accept.
MAX_UPLOAD_MB = 20  # phone photos are 2-12 MB
MAX_MEGAPIXELS = 100  # any format: a 48-megapixel phone photo fits, a 400-megapixel bomb does not
MAX_FULL_DECODE_MEGAPIXELS = 36  # PNG, WebP, ... are decoded whole (an 8K screenshot is 33 megapixels)
DECODE_SLOTS = 2  # uploads decoded at once; the others wait their turn
MULTIPART_SLACK = 64 * 1024  # bytes of form headers around the photo in a multipart body
DRAIN_FACTOR = 5  # an upload up to this many times the limit is read (and dropped) before it is refused
MAX_IN_FLIGHT = 16  # requests with a body being received or answered at once; more get 503 and Retry-After
MAX_FORM_PARTS = 4  # files and fields in one form upload (the page sends one photo at a time)
MAX_OTHER_BODY_KB = 64  # any other body (Gradio's API calls): they name an uploaded file, they do not carry it
BODY_IDLE_SECONDS = 30  # a client that stops sending its body for this long is disconnected
RETRY_AFTER_SECONDS = 5
QUEUE_SIZE = 32  # page events waiting for the model; more get Gradio's own 503 "queue is full"
DELETE_UPLOADS = (300, 900)  # every 5 minutes, Gradio deletes uploads older than 15 minutes

# The only formats decoded. Pillow knows others (EPS runs Ghostscript) that no photo needs.
PHOTO_FORMATS = tuple(name for name in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
                      if name in Image.OPEN)

DRAFTABLE = ("JPEG", "MPO")  # MPO: a JPEG with extra pictures inside (some phones and cameras write it)
NOT_A_PHOTO = "This file is not a photo we can read. Try a JPEG, PNG, WebP, HEIC, BMP, GIF or TIFF image."
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
        with Image.open(io.BytesIO(data), formats=PHOTO_FORMATS) as image:
            kind, (width, height) = image.format, image.size
            # Progressive JPEGs keep every coefficient of the whole picture while decoding, even drafted.
            drafted = kind in DRAFTABLE and not image.info.get("progressive")
            animated = kind not in DRAFTABLE and getattr(image, "is_animated", False)
    except Image.DecompressionBombError as err:  # Pillow's own guard (about 179 megapixels) fired first
        raise bomb_refusal(err) from None
    except Exception:  # UnidentifiedImageError, or a header too damaged to read
        raise Refusal(415, NOT_A_PHOTO) from None
    if animated:
        raise Refusal(415, "This is an animated or multi-frame image; upload a single still photo (a JPEG or PNG).")
    limit = MAX_MEGAPIXELS if drafted else MAX_FULL_DECODE_MEGAPIXELS
    if width * height > limit * 1_000_000:
        which = "" if drafted else f" for {'progressive ' if kind in DRAFTABLE else ''}{kind or 'this format'}"
        raise Refusal(413, f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
                           f"the limit{which} is {limit} megapixels. {DOWNSCALE}")


def bomb_refusal(err: Exception) -> Refusal:
    """413 with the size Pillow's DecompressionBombError names."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
    return Refusal(413, f"The image has {size}; the limit is {MAX_MEGAPIXELS} megapixels. {DOWNSCALE}")


def decode_upload(data: bytes, min_size: int | None, load: Callable[[io.BytesIO, int | None], Image.Image]):
    """``check_upload``, then decode with ``load`` (the same loader ``predict`` uses, so the answers agree).

    A file whose header is fine but whose pixels are damaged or cut off is refused with 422.
    """
    check_upload(data)
    with _slots:
        try:
            return load(io.BytesIO(data), min_size)
        except Image.DecompressionBombError as err:
            raise bomb_refusal(err) from None
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
    with gr.Blocks(title=title, delete_cache=DELETE_UPLOADS) as page:
        gr.Markdown(f"# {title}\nDrop a photo (or click to upload one) and the model tells you what it sees. "
                    f"It knows {len(classes)} classes: {shown}.")
        with gr.Row(equal_height=True):
            photo = gr.Image(type="filepath", image_mode=None, label="Your photo", sources=["upload", "clipboard"],
                             height=360)
            answer = gr.Label(num_top_classes=top_k, label="What the model thinks")

        def predict(data: bytes | None) -> dict[str, float] | None:
            if not data:
                return None
            try:
                return classify(data)
            except Refusal as refusal:
                raise gr.Error(refusal.reason) from None

        # Gradio's own preprocessing would open the upload with Pillow (any format) and decode data: URLs
        # whole before ``predict`` sees them. This one hands ``predict`` the checked bytes instead.
        def checked_preprocess(payload) -> bytes | None:
            if payload is None:
                return None
            try:
                data = payload_bytes(payload)
                check_upload(data)
                return data
            except Refusal as refusal:
                raise gr.Error(refusal.reason) from None

        photo.preprocess = checked_preprocess
        photo.change(predict, inputs=photo, outputs=answer, api_name="predict")
        if examples:
            gr.Examples(examples=examples, inputs=photo, label="Or click a photo from the validation set",
                        examples_per_page=len(examples))
        gr.Markdown(f"<small>{footer}</small>")
    return page


def payload_bytes(payload) -> bytes:
    """The file a Gradio payload names (an upload), or the bytes of its ``data:`` URL, decoded here with a size cap."""
    url, limit = payload.url or "", MAX_UPLOAD_MB * 1_000_000
    too_big = f"The file is over {MAX_UPLOAD_MB} MB; the limit is {MAX_UPLOAD_MB} MB. {DOWNSCALE}"
    if url.startswith("data:"):
        header, _, encoded = url.partition(",")
        if len(encoded) > limit * 4 // 3 + 4:
            raise Refusal(413, too_big)
        try:
            return base64.b64decode(encoded, validate=True) if header.endswith(";base64") else b""
        except (binascii.Error, ValueError):
            raise Refusal(415, NOT_A_PHOTO) from None
    try:
        path = Path(payload.path or "")
        if not path.is_file():
            raise Refusal(400, "No photo arrived; upload it again.")
        if path.stat().st_size > limit:
            raise Refusal(413, too_big)
        return path.read_bytes()
    except OSError:
        raise Refusal(400, "No photo arrived; upload it again.") from None


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
        # RequestLimits has already refused bodies without a length or over the limit, before reading them.
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


# ---- limits in front of every route ------------------------------------------------------------------
class RequestLimits:
    """ASGI middleware in front of the page, Gradio's API and /classify; it looks at requests with a body.

    Beyond ``max_in_flight`` of them at once: 503 with Retry-After, before anything is read, so a burst
    cannot queue up bodies in memory. A body needs a Content-Length within the limit (form uploads:
    MAX_UPLOAD_MB; anything else: MAX_OTHER_BODY_KB, which leaves no room for a photo inside a
    ``data:`` URL), and a form upload at most MAX_FORM_PARTS files and fields: otherwise 411 or 413.
    """

    def __init__(self, app, max_in_flight: int = MAX_IN_FLIGHT):
        self.app, self.max_in_flight, self.in_flight = app, max_in_flight, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:
            return await answer(send, 503, "The server is busy; try again in a few seconds.",
                                [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self.checked(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def checked(self, scope, receive, send):
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        length, kind = headers.get("content-length", "0"), headers.get("content-type", "")
        if "transfer-encoding" in headers or not length.isdigit():
            return await answer(send, 411, "Send the upload with a Content-Length, as a form: "
                                           "curl -F image=@photo.jpg URL")
        form = kind.startswith("multipart/form-data")
        limit = MAX_UPLOAD_MB * 1_000_000 + MULTIPART_SLACK if form else MAX_OTHER_BODY_KB * 1024
        receive = idle_limited(receive)
        if int(length) > limit:
            # A browser sends the whole body before it reads the answer: up to a few times the limit is read
            # and dropped (never kept), so it shows this sentence instead of "connection reset". curl asks
            # first (Expect: 100-continue) and gets the answer without uploading anything.
            if int(length) <= DRAIN_FACTOR * limit and headers.get("expect", "").lower() != "100-continue":
                while (await receive()).get("more_body"):
                    pass
            if form:
                reason = f"The upload is {int(length) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_MB} MB. {DOWNSCALE}"
            else:
                reason = (f"The request is {int(length) / 1024:.0f} KB; the limit is {MAX_OTHER_BODY_KB} KB. Upload "
                          "photos as files (a form upload, or Gradio's upload), not inside the request (data: URLs).")
            return await answer(send, 413, reason)
        if form:
            chunks = []
            while True:  # at most ``limit`` bytes: the Content-Length was checked
                message = await receive()
                chunks.append(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    break
            body, chunks = b"".join(chunks), None  # one copy of the body is kept, not two
            boundary = re.search(r"boundary=\"?([^\";]+)", kind)
            parts = body.count(b"--" + boundary.group(1).encode("latin-1")) - 1 if boundary else 0
            if parts > MAX_FORM_PARTS:
                return await answer(send, 413, f"This upload has {parts} files or fields; the limit is "
                                               f"{MAX_FORM_PARTS}. Send one photo at a time.")
            receive, body = replay(body, receive), None  # the body lives only until the route has read it
        await self.app(scope, receive, send)


async def answer(send, status: int, reason: str, headers: list | None = None) -> None:
    """A JSON refusal sent straight from the middleware: {"error": reason, "file": null}."""
    body = json.dumps({"error": reason, "file": None}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def idle_limited(receive):
    """``receive`` that gives up on a body whose next part takes over BODY_IDLE_SECONDS (a stalled client)."""
    done = False

    async def receive_body():
        nonlocal done
        if done:  # the body is complete: later calls wait for the client to leave, as long as it takes
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), BODY_IDLE_SECONDS)
        except asyncio.TimeoutError:
            return {"type": "http.disconnect"}
        done = not message.get("more_body")
        return message

    return receive_body


def replay(body: bytes, receive):
    """``receive`` that gives the body already read (once, then lets go of it), then passes on to the client's own."""
    waiting = [body]

    async def receive_again():
        if not waiting:
            return await receive()
        return {"type": "http.request", "body": waiting.pop(), "more_body": False}

    return receive_again


def launch(page, classify: Callable[[bytes], dict[str, float]], host: str, port: int, share: bool = False,
           allowed_paths: list[str] | None = None):
    """Start the page and /classify on ``host:port`` without blocking; OSError if the port is taken.

    The route and ``RequestLimits`` are handed to the FastAPI app Gradio creates (``app_kwargs``), so they
    apply from the first request on; added after ``launch`` it would 404 until launch had finished its own checks.
    Pillow's warning about big pictures (from 89 megapixels) is turned off for the server's life: the
    limits above decide instead, so the server log stays readable.
    """
    from starlette.middleware import Middleware

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    page.queue(max_size=QUEUE_SIZE)
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, show_error=True,
                quiet=True, max_file_size=MAX_UPLOAD_MB * 1_000_000, allowed_paths=allowed_paths or [],
                app_kwargs={"routes": [classify_route(classify)], "middleware": [Middleware(RequestLimits)]})
    return page
