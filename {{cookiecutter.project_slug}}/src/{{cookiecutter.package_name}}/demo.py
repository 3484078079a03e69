"""A web page to try your model on any photo, and the same predictions as JSON over HTTP.

    pip install -e .[demo]
    {{ cookiecutter.project_slug }} demo runs/<name>                  # open http://127.0.0.1:7860
    {{ cookiecutter.project_slug }} demo exports/<name>-onnx --port 8000

It listens on 127.0.0.1 (this computer only) unless you pass ``--host 0.0.0.0``, and makes no public
link unless you pass ``--share``. Besides the page, ``POST /classify`` takes a photo and answers JSON:

    curl -F image=@photo.jpg http://127.0.0.1:7860/classify
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route's type hints at run time.
import csv
import os
import tempfile
from pathlib import Path

from {{ cookiecutter.package_name }}.config import read_yaml
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.predict import LoadedClassifier, load_classifier, require

TITLE = {{ cookiecutter.project_name | tojson }}
NOT_A_PHOTO = "This file is not a photo we can read. Try a JPEG, PNG, WebP, BMP, GIF or TIFF image."
EXAMPLES_PER_CLASS = 2
MAX_EXAMPLES = 12


def classify(classifier: LoadedClassifier, image_path: str, top_k: int) -> dict[str, float]:
    """{class: probability} for the top-k classes of one image file; ValueError if it is not an image."""
    try:
        tensor = classifier.load_image(image_path)
    except (OSError, ValueError) as err:
        raise ValueError(NOT_A_PHOTO) from err
    labels, probabilities = classifier.top_k(classifier.probabilities(tensor[None]), top_k)[0]
    return {label: round(p, 6) for label, p in zip(labels, probabilities, strict=True)}


def example_images(classifier: LoadedClassifier) -> list[str]:
    """A few validation images of the run (a couple per class), if its data folder is still there."""
    run = classifier.run
    if run is None or not run.splits.is_file() or not run.config.is_file():
        return []
    root = Path(str(read_yaml(run.config).get("data", ""))).expanduser()
    picked: dict[str, list[str]] = {}
    with open(run.splits, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            path = root / row["path"]
            chosen = picked.setdefault(row["class"], [])
            if row["split"] == "val" and len(chosen) < EXAMPLES_PER_CLASS and path.is_file():
                chosen.append(str(path.resolve()))
    # One of each class first, then the second ones, so a short list still shows every class.
    rounds = [paths[i] for i in range(EXAMPLES_PER_CLASS) for paths in picked.values() if i < len(paths)]
    return rounds[:MAX_EXAMPLES]


def build_page(classifier: LoadedClassifier, top_k: int, address: str = "http://127.0.0.1:7860"):
    """The Gradio page: a photo on the left, the top classes on the right, examples underneath."""
    import gradio as gr

    classes = classifier.class_names
    shown = ", ".join(classes[:12]) + (f" and {len(classes) - 12} more" if len(classes) > 12 else "")
    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(f"# {TITLE}\nDrop a photo (or click to upload one) and the model tells you what it sees. "
                    f"It knows {len(classes)} classes: {shown}.")
        with gr.Row(equal_height=True):
            photo = gr.Image(type="filepath", label="Your photo", sources=["upload", "clipboard"], height=360)
            answer = gr.Label(num_top_classes=top_k, label="What the model thinks")

        def predict(image_path: str | None) -> dict[str, float] | None:
            if not image_path:
                return None
            try:
                return classify(classifier, image_path, top_k)
            except ValueError as err:
                raise gr.Error(str(err)) from None

        # Gradio opens the upload with Pillow before ``predict`` sees it; a text file renamed .jpg would
        # end there as a bare "Error". Checking here turns that into the same clear message.
        preprocess = photo.preprocess

        def checked_preprocess(payload):
            try:
                return preprocess(payload)
            except (OSError, ValueError):
                raise gr.Error(NOT_A_PHOTO) from None

        photo.preprocess = checked_preprocess
        photo.change(predict, inputs=photo, outputs=answer, api_name="predict")
        examples = example_images(classifier)
        if examples:
            gr.Examples(examples=examples, inputs=photo, label="Or click a photo from the validation set",
                        examples_per_page=MAX_EXAMPLES)
        gr.Markdown(f"<small>Model: {classifier.backbone or 'exported'} from `{classifier.source}`. "
                    f"JSON for programs: `curl -F image=@photo.jpg {address}/classify`</small>")
    return page


def add_json_route(app, classifier: LoadedClassifier, top_k: int) -> None:
    """POST /classify with a multipart ``image`` field -> {"label", "probability", "top_k": [...]}."""
    from fastapi import File, UploadFile
    from fastapi.responses import JSONResponse

    async def classify_upload(image: UploadFile = File(...)) -> JSONResponse:  # noqa: B008 (FastAPI's idiom)
        suffix = Path(image.filename or "upload").suffix[:10]
        with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as file:
            file.write(await image.read())
        try:
            scores = classify(classifier, file.name, top_k)
        except ValueError as err:
            return JSONResponse({"error": str(err), "file": image.filename}, status_code=400)
        finally:
            os.unlink(file.name)
        top = [{"label": label, "probability": p} for label, p in scores.items()]
        return JSONResponse({"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})

    app.add_api_route("/classify", classify_upload, methods=["POST"])


def serve(target: str, host: str = "127.0.0.1", port: int = 7860, top_k: int = 3, share: bool = False,
          block: bool = True):
    """Load the model, start the page and the JSON route, and wait (Ctrl+C stops it)."""
    require("gradio", "demo")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports to Gradio's servers
    if top_k < 1:
        raise UserError("--top-k must be 1 or more.")
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a port number; use one between 1024 and 65535, e.g. 7860.")
    classifier = load_classifier(target)
    address = f"http://{'127.0.0.1' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    page = build_page(classifier, top_k, address)
    try:
        page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                    show_error=True, quiet=True,
                    allowed_paths=[str(Path(p).parent) for p in example_images(classifier)])
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err}); pass another --port, e.g. {port + 1}.") from None
    add_json_route(page.app, classifier, top_k)
    print(f"Demo of {classifier.describe()}")
    print(f"Open {address} in your browser (JSON: POST {address}/classify). Ctrl+C stops it.")
    if page.share_url:
        print(f"Public link (anyone with it can use your model for 72 hours): {page.share_url}")
    if block:
        page.block_thread()
    return page
