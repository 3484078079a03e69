"""This classifier as a Hugging Face Space: a web page to try it on a photo, and POST /classify for programs.

    pip install -r requirements.txt
    python app.py                                   # http://127.0.0.1:7860, this computer only
    curl -F image=@photo.jpg http://127.0.0.1:7860/classify

On Hugging Face the Space runs this same file (README.md has the three commands that publish it).
It needs only gradio, onnxruntime, numpy, Pillow and pillow-heif (iPhone photos): no PyTorch, and not
the project that trained the model. predict.py prepares each photo exactly as training's validation
did (export checked that against PyTorch); serving.py refuses uploads that are too big, decompression
bombs, animations and files that are not photos with a 4xx and one sentence, before decoding
anything, and answers 503 when too many requests arrive at once.

(export --format space writes this file as app.py; it must not import the project or PyTorch.)
"""

import json
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports from your computer

import numpy as np  # noqa: E402 (after the line above, which Gradio reads when it is imported)
import serving  # noqa: E402
from predict import Model, load_rgb, preprocess, softmax  # noqa: E402

HERE = Path(__file__).resolve().parent
TITLE = {{ cookiecutter.project_name | tojson }}
TOP_K = 3  # classes shown per photo

model = Model(HERE)
measured = json.loads((HERE / "export.json").read_text(encoding="utf-8"))  # what export timed


def classify(data: bytes) -> dict[str, float]:
    """{class: probability} for the TOP_K classes of one uploaded file; serving.Refusal (a 4xx) if unusable."""
    image = serving.decode_upload(data, model.config["decode_min_size"], load_rgb)
    probabilities = softmax(model.logits(preprocess(image, model.config)[None]))[0]
    best = np.argsort(-probabilities, kind="stable")[:TOP_K]
    return {model.labels[i]: round(float(probabilities[i]), 6) for i in best}


def main() -> None:
    footer = (f"Model: {model.config.get('backbone') or 'a timm network'}, exported to ONNX. One image takes "
              f"{measured['cpu_ms_per_image']:.1f} ms on the CPU of the computer that exported it "
              f"({measured['threads']} thread(s)). JSON for programs: "
              "`curl -F image=@photo.jpg <this page's address>/classify`")
    page = serving.build_page(TITLE, model.labels, classify, TOP_K, footer)
    # Hugging Face sets GRADIO_SERVER_NAME=0.0.0.0 on a Space; on your computer it stays on loopback.
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    serving.launch(page, classify, host, port)
    print(f"{TITLE} is served on http://{host}:{port} (JSON: POST /classify). Ctrl+C stops it.", flush=True)
    page.block_thread()


if __name__ == "__main__":
    main()
