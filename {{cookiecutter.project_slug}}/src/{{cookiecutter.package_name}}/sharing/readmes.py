"""The texts ``export`` writes: the bundle's README.md, the Space's README.md (with the metadata block
Hugging Face reads), and export.json (the measurements, for programs).
"""

from __future__ import annotations

import json

from {{ cookiecutter.package_name }}.sharing.parity import ExportReport
from {{ cookiecutter.package_name }}.sharing.serving import MAX_FULL_DECODE_MEGAPIXELS, MAX_MEGAPIXELS, MAX_UPLOAD_MB


def bundle_readme(classifier, report: ExportReport, resize: int) -> str:
    """The bundle's README.md: what is in it, how to use it, and what export measured."""
    model_file = "model.pt" if report.format == "torchscript" else "model.onnx"
    needs = "onnxruntime numpy pillow" if report.format == "onnx" else "torch numpy pillow"
    _, height, width = classifier.data_config["input_size"]
    classes = len(classifier.class_names)
    return f"""# {classifier.run.path.name}: an image classifier ({report.format})

{classifier.backbone}, fine-tuned on {len(classifier.class_names)} classes: {", ".join(classifier.class_names)}.

```bash
pip install {needs}
pip install pillow-heif      # only for iPhone photos (HEIC)
python predict.py photo.jpg more-photos/ --top-k 3 --csv predictions.csv
```

| file | what it is |
| --- | --- |
| `{model_file}` | the network: float32 images `[batch, 3, {height}, {width}]` in, logits `[batch, {classes}]` out |
| `labels.json` | class names, in the order of the logits |
| `preprocess.json` | shorter side to {resize} px, centre crop, then `(pixel / 255 - mean) / std` |
| `predict.py` | reads photos, prepares them as in training, prints the top classes |

Checked at export on {report.images} validation images: top-1 agreement with PyTorch
{report.top1_agreement:.1%}, largest logit difference {report.max_abs_diff:.1e}. One image on the CPU:
{report.export_ms:.1f} ms ({report.format}) vs {report.pytorch_ms:.1f} ms (PyTorch) with {report.threads} thread(s);
{report.export_mb:.1f} MB.
"""


def measurements(report: ExportReport) -> dict:
    """export.json: what the check measured, read by the demo page and the Space's app.py."""
    return {
        "format": "torchscript" if report.format == "torchscript" else "onnx",
        "cpu_ms_per_image": round(report.export_ms, 3),
        "pytorch_cpu_ms_per_image": round(report.pytorch_ms, 3),
        "threads": report.threads,
        "parity_images": report.images,
        "top1_agreement": report.top1_agreement,
        "max_abs_logit_difference": report.max_abs_diff,
        "model_mb": round(report.export_mb, 3),
    }


def space_readme(classifier, report: ExportReport) -> str:
    """The Space's README.md: the metadata block Hugging Face reads, then how to try and publish it."""
    import importlib.metadata

    try:  # the Space runs the Gradio version this computer has, when it has one
        sdk_version = f"sdk_version: {importlib.metadata.version('gradio')}\n"
    except importlib.metadata.PackageNotFoundError:
        sdk_version = ""  # Hugging Face then picks its current Gradio
    title = json.dumps({{ cookiecutter.project_name | tojson }}, ensure_ascii=False)
    classes = classifier.class_names
    shown = ", ".join(classes[:12]) + (f" and {len(classes) - 12} more" if len(classes) > 12 else "")
    return f"""---
title: {title}
emoji: 📷
colorFrom: indigo
colorTo: green
sdk: gradio
{sdk_version}app_file: app.py
pinned: false
---

# {json.loads(title)}

{classifier.backbone}, fine-tuned on {len(classes)} classes ({shown}). Drop a photo on the page;
programs can `POST /classify` and get JSON. **One image takes {report.export_ms:.1f} ms** on the CPU
(ONNX Runtime, {report.threads} thread(s), measured by `export` on the computer that made this folder; a
free Space's CPU may be slower).

## Try it on your computer first

```bash
pip install -r requirements.txt
python app.py                                  # http://127.0.0.1:7860 (this computer only)
curl -F image=@photo.jpg http://127.0.0.1:7860/classify
```

## Publish it

With a free Hugging Face account and a token that may write (huggingface.co/settings/tokens):

```bash
pip install -U huggingface_hub
hf auth login                                                          # 1. paste the token
hf repos create <you>/<space-name> --repo-type space --space-sdk gradio    # 2. an empty Space
hf upload <you>/<space-name> . --repo-type space                          # 3. this folder, run from here
```

After a minute or two of building, your friends can open https://huggingface.co/spaces/<you>/<space-name>;
programs use `https://<you>-<space-name>.hf.space/classify`. (With git instead: clone the empty Space,
copy these files in, `git lfs track "*.onnx"`, commit, `git push`.)

## What is here

| file | what it is |
| --- | --- |
| `app.py` | the page and `POST /classify` (Gradio, ONNX Runtime; no PyTorch) |
| `serving.py` | the checks every upload passes before it is decoded |
| `predict.py` | prepares a photo as training did; also works alone: `python predict.py photo.jpg` |
| `model.onnx`, `labels.json`, `preprocess.json` | the network, its class names, its preprocessing |
| `export.json` | what `export` measured: latency, agreement with PyTorch |
| `requirements.txt` | what the Space installs |

Checked at export on {report.images} validation images: top-1 agreement with PyTorch
{report.top1_agreement:.1%}, largest logit difference {report.max_abs_diff:.1e}.

Uploads that are refused with a 4xx and a one-line JSON reason instead of being decoded: over
{MAX_UPLOAD_MB} MB, over {MAX_MEGAPIXELS} megapixels ({MAX_FULL_DECODE_MEGAPIXELS} for PNG and other formats that
must be decoded whole), animated or multi-frame files, and files that are not images. The limits are
at the top of `serving.py`.
"""
