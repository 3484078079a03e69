"""A web page to try your model on any photo, and the same predictions as JSON over HTTP.

    pip install -e ".[demo]"
    {{ cookiecutter.project_slug }} demo runs/<name>                  # open http://127.0.0.1:7860
    {{ cookiecutter.project_slug }} demo exports/<name>-onnx --port 8000

It listens on 127.0.0.1 (this computer only) unless you pass ``--host 0.0.0.0``, and makes no public
link unless you pass ``--share``. Besides the page, ``POST /classify`` takes a photo and answers JSON:

    curl -F image=@photo.jpg http://127.0.0.1:7860/classify

The page, the route and the checks on every upload live in serving.py, which the Hugging Face Space
made by ``export --format space`` serves too; this file serves them for a model that
``predict.load_classifier`` loaded (a run or a bundle), with examples from the run's validation split.
"""

import json
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from {{ cookiecutter.package_name }}.dataset.decode import load_rgb
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.run_folder.finding import validation_images
from {{ cookiecutter.package_name }}.sharing.extras import require
from {{ cookiecutter.package_name }}.sharing.serving import build_page, decode_upload, launch

TITLE = {{ cookiecutter.project_name | tojson }}
EXAMPLES_PER_CLASS = 2
MAX_EXAMPLES = 12


def classify(classifier, data: bytes, top_k: int) -> dict[str, float]:
    """{class: probability} for the top-k classes of one uploaded file; ``Refusal`` (a 4xx) if it cannot be used.

    The file is checked and decoded by serving.py, with the very loader ``predict`` uses.
    """
    image = decode_upload(data, classifier.decode_size, load_rgb)
    labels, probabilities = classifier.top_k(classifier.probabilities(classifier.prepare(image)[None]), top_k)[0]
    return {label: round(p, 6) for label, p in zip(labels, probabilities, strict=True)}


def example_images(classifier) -> list[str]:
    """A few validation images of the run (a couple per class), if its data folder is still there."""
    run = classifier.run
    if run is None or not run.splits.is_file() or not run.config.is_file():
        return []
    return [str(path.resolve()) for path in validation_images(run, per_class=EXAMPLES_PER_CLASS)[:MAX_EXAMPLES]]


def latency_note(classifier) -> str:
    """How long one image takes on the CPU: export's measurement for a bundle, else timed here at start."""
    measured = classifier.source / "export.json"
    if classifier.kind != "pytorch" and measured.is_file():
        report = json.loads(measured.read_text(encoding="utf-8"))
        return (f"One image takes {report['cpu_ms_per_image']:.1f} ms on the CPU ({report['format']}, "
                f"{report['threads']} thread(s), measured by export).")
    _, height, width = classifier.data_config["input_size"]
    blank = classifier.prepare(Image.new("RGB", (width, height), (128, 128, 128)))[None]
    timings = []
    for _ in range(8):  # the first runs warm up; the median of the rest is the figure
        started = time.perf_counter()
        classifier.logits(blank)
        timings.append((time.perf_counter() - started) * 1000)
    return (f"One image takes {statistics.median(timings[3:]):.1f} ms on {classifier.device} "
            "(the model alone, measured when the demo started).")


def check_options(host: str = "127.0.0.1", port: int = 7860, top_k: int = 3) -> None:
    """Refuse what cannot work before the model is loaded: no Gradio, a wrong --top-k or --port."""
    require("gradio", "demo")
    if top_k < 1:
        raise UserError("--top-k must be 1 or more.")
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a port number; use one between 1024 and 65535, e.g. 7860.")


def serve(classifier, host: str = "127.0.0.1", port: int = 7860, top_k: int = 3, share: bool = False,
          block: bool = True):
    """Start the page and the JSON route for ``classifier`` (what ``predict.load_classifier`` loads from a
    run or a bundle), and wait (Ctrl+C stops it)."""
    check_options(host, port, top_k)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports to Gradio's servers
    address = f"http://{'127.0.0.1' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    examples = example_images(classifier)
    footer = (f"Model: {classifier.backbone or 'exported'} from `{classifier.source}`. {latency_note(classifier)} "
              f"JSON for programs: `curl -F image=@photo.jpg {address}/classify`")

    def answer(data: bytes) -> dict[str, float]:
        return classify(classifier, data, top_k)

    page = build_page(TITLE, classifier.class_names, answer, top_k, footer, examples)
    try:
        launch(page, answer, host, port, share, allowed_paths=[str(Path(p).parent) for p in examples])
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err}); pass another --port, e.g. {port + 1}.") from None
    print(f"Demo of {classifier.describe()}")
    print(f"Open {address} in your browser (JSON: POST {address}/classify). Ctrl+C stops it.")
    if page.share_url:
        print(f"Public link (anyone with it can use your model for 72 hours): {page.share_url}")
    if block:
        page.block_thread()
    return page
