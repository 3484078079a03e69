"""The flags of ``predict``, ``export`` and ``demo``; cli.py puts every command's flags together.

``export`` and ``demo`` run on the model that ``load`` (``predict.load_classifier``, from cli.py) loads;
what they run is imported when they run, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import functools


def _probability(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability such as 0.6, got {text!r}") from None


def add_predict(commands, handler) -> None:
    parser = commands.add_parser(
        "predict", help="predict the classes of photos with a trained run or an exported bundle",
        description="Top-k predictions for images and folders of images (searched recursively), "
        "prepared exactly like the run's validation images.",
    )
    parser.add_argument("model", metavar="RUN_OR_BUNDLE", help="runs/<name>, a .ckpt file, or a folder made by export")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="photos and/or folders of photos")
    parser.add_argument("--top-k", type=int, default=3, metavar="N", help="classes to show per image (default: 3)")
    parser.add_argument("--csv", metavar="FILE", help="also save one row per image: path,label,probability,label_2,...")
    parser.add_argument("--threshold", type=_probability, metavar="P",
                        help="call a prediction 'unsure' when its probability is below P (e.g. 0.6)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per batch (default: 32)")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "mps"],
                        help="where to run the model (default: auto)")
    parser.set_defaults(handler=handler)


def add_export(commands, load) -> None:
    parser = commands.add_parser(
        "export", help="write a bundle that predicts without this project (ONNX, TorchScript, or a Space)",
        description="Write model, labels.json, preprocess.json, a standalone predict.py and a README to a "
        "folder, then check it against PyTorch on the run's validation images and time both. "
        "--format space adds app.py and requirements.txt: a folder ready to publish as a Hugging Face Space. "
        'Needs: pip install -e ".[export]"',
    )
    parser.add_argument("run", metavar="RUN", help="the run folder to export (runs/<name>) or its .ckpt")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "space"],
                        help="default: onnx; space = ONNX plus a Gradio app for Hugging Face Spaces")
    parser.add_argument("--output", metavar="DIR", help="bundle folder (default: exports/<run name>-<format>)")
    parser.add_argument("--data", metavar="DIR", help="where the run's dataset is now, if it has moved")
    parser.add_argument("--parity-images", type=int, default=64, metavar="N",
                        help="validation images to compare PyTorch and the export on (default: 64)")
    parser.add_argument("--latency-runs", type=int, default=50, metavar="N",
                        help="timed single-image runs; the median is reported (default: 50)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads for the latency test, the same for both (default: one per core)")
    parser.set_defaults(handler=functools.partial(run_export, load=load))


def run_export(args: argparse.Namespace, load) -> None:
    from {{ cookiecutter.package_name }}.sharing.export import check_options, export

    check_options(args.format, args.parity_images, args.latency_runs, args.threads)  # before the model loads
    classifier = load(args.run, accelerator="cpu")  # a bundle is for machines without a GPU too
    export(classifier, args.format, args.output, args.data, args.parity_images, args.latency_runs, args.threads)
{%- if cookiecutter.include_demo == "yes" %}


def add_demo(commands, load) -> None:
    parser = commands.add_parser(
        "demo", help="a web page to try the model on your own photos (Gradio)",
        description="Start a local web demo: upload a photo, see the top classes. Also answers JSON at "
        'POST /classify. Needs: pip install -e ".[demo]"',
    )
    parser.add_argument("model", metavar="RUN_OR_BUNDLE", help="runs/<name>, a .ckpt file, or a folder made by export")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only; 0.0.0.0 = your network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--top-k", type=int, default=3, metavar="N", help="classes to show (default: 3)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public link through Gradio")
    parser.set_defaults(handler=functools.partial(run_demo, load=load))


def run_demo(args: argparse.Namespace, load) -> None:
    from {{ cookiecutter.package_name }}.sharing.demo import check_options, serve

    check_options(args.host, args.port, args.top_k)  # before the model loads
    serve(load(args.model), host=args.host, port=args.port, top_k=args.top_k, share=args.share)
{%- endif %}
