"""The ``{{ cookiecutter.project_slug }}`` command: one subcommand per job.

    {{ cookiecutter.project_slug }} check-data data/my-pets          look for problems in a dataset folder
    {{ cookiecutter.project_slug }} train --data data/my-pets        fine-tune a classifier
    {{ cookiecutter.project_slug }} train --help                     every training flag, by topic

Heavy libraries (torch, Lightning) are imported inside each command, so ``--help`` and typos answer
at once. Mistakes a user can fix raise ``UserError`` and end here as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import gc
import sys
from collections.abc import Sequence

from {{ cookiecutter.package_name }}.config import FIELDS, load_config
from {{ cookiecutter.package_name }}.errors import UsageError, UserError

PROG = "{{ cookiecutter.project_slug }}"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises ``UsageError`` (one line) instead of printing usage."""

    def __init__(self, *args, **kwargs):
        # No abbreviations: --epoch must not silently mean --epochs (we suggest it instead).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _known_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag of ``parser``, for the did-you-mean hint on a typo."""
    return [flag for action in parser._actions for flag in action.option_strings]


# ---- train ------------------------------------------------------------------------------------
GROUP_TITLES = {
    "data": "data",
    "model": "model",
    "training": "training recipe",
    "hardware": "hardware (CPU, Apple GPU, NVIDIA GPUs)",
    "output": "output and resuming",
}


def add_train(commands) -> None:
    parser = commands.add_parser(
        "train", help="fine-tune a pretrained backbone on a folder of images",
        description="Fine-tune a pretrained timm backbone on DATA/train/<class>/ images. "
        "Flags override the --config file, which overrides the defaults in configs/default.yaml.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (see configs/default.yaml)")
    groups = {key: parser.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    for name, spec in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        group = groups[spec.metadata["group"]]
        default = spec.default
        help_text = f"{spec.metadata['help']} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = spec.metadata["choices"]
            metavar = "|".join(choices) if choices else name.split("_")[-1].upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)
    parser.set_defaults(handler=run_train, flags=_known_flags(parser))


def run_train(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.run_folder import find_resume, resume_config
    from {{ cookiecutter.package_name }}.train import train

    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    cfg = load_config(args.config, overrides)
    if cfg.resume:
        run, _ = find_resume(cfg.resume)
        cfg = resume_config(run, args.config, overrides)
    train(cfg)


# ---- predict, export, demo ---------------------------------------------------------------------
def _probability(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability such as 0.6, got {text!r}") from None


def add_predict(commands) -> None:
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
    parser.set_defaults(handler=run_predict, flags=_known_flags(parser))


def run_predict(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.predict import predict

    predict(args.model, args.images, top_k=args.top_k, csv_path=args.csv, threshold=args.threshold,
            batch_size=args.batch_size, accelerator=args.accelerator)


def add_export(commands) -> None:
    parser = commands.add_parser(
        "export", help="write a bundle that predicts without this project (ONNX, TorchScript, or a Space)",
        description="Write model, labels.json, preprocess.json, a standalone predict.py and a README to a "
        "folder, then check it against PyTorch on the run's validation images and time both. "
        "--format space adds app.py and requirements.txt: a folder ready to publish as a Hugging Face Space. "
        "Needs: pip install -e .[export]",
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
    parser.set_defaults(handler=run_export, flags=_known_flags(parser))


def run_export(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.export import export

    if args.parity_images < 1 or args.latency_runs < 1 or args.threads < 0:
        raise UsageError("--parity-images and --latency-runs must be 1 or more, --threads 0 or more.")
    export(args.run, args.format, args.output, args.data, args.parity_images, args.latency_runs, args.threads)
{%- if cookiecutter.include_demo == "yes" %}


def add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo", help="a web page to try the model on your own photos (Gradio)",
        description="Start a local web demo: upload a photo, see the top classes. Also answers JSON at "
        "POST /classify. Needs: pip install -e .[demo]",
    )
    parser.add_argument("model", metavar="RUN_OR_BUNDLE", help="runs/<name>, a .ckpt file, or a folder made by export")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only; 0.0.0.0 = your network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--top-k", type=int, default=3, metavar="N", help="classes to show (default: 3)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public link through Gradio")
    parser.set_defaults(handler=run_demo, flags=_known_flags(parser))


def run_demo(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.demo import serve

    serve(args.model, host=args.host, port=args.port, top_k=args.top_k, share=args.share)
{%- endif %}


# ---- check-data, download-pets --------------------------------------------------------------------
def _processes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes (1 or more), got {text!r}")
    return value


def add_check_data(commands) -> None:
    parser = commands.add_parser(
        "check-data", help="check a dataset folder for problems before training on it",
        description="Decode every image of DATA_DIR and report per-class counts, unreadable or odd files, "
        "duplicates (within a class, across classes, across splits) and class imbalance. "
        "Exit code 0: train can use the folder (warnings allowed); 1: it cannot, and why.",
    )
    parser.add_argument("data", metavar="DATA_DIR", help="dataset folder, e.g. data/my-pets")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--all", action="store_true", help="list every file of every problem (default: the first 5)")
    parser.add_argument("--workers", type=_processes, metavar="N",
                        help="decoding processes (default: one per CPU core)")
    parser.set_defaults(handler=run_check_data, flags=_known_flags(parser))


def run_check_data(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.audit import check_data

    check_data(args.data, json_path=args.json, show_all=args.all, processes=args.workers)


def add_download_pets(commands) -> None:
    parser = commands.add_parser(
        "download-pets", help="download the Oxford-IIIT Pet photos, laid out ready to train",
        description="Download Oxford-IIIT Pet (about 800 MB, 37 breeds) and lay it out as DATA_DIR/train, val "
        "and test/<class>/. The official trainval list is split 80/20 into train and val (stratified), the "
        "official test list becomes test. Running it again does nothing.",
    )
    parser.add_argument("data", metavar="DATA_DIR", help="where to put the dataset, e.g. data/oxford-pets")
    parser.add_argument("--task", default="breeds", choices=["breeds", "cats-vs-dogs"],
                        help="breeds: 37 classes; cats-vs-dogs: 2 classes (default: breeds)")
    parser.set_defaults(handler=run_download_pets, flags=_known_flags(parser))


def run_download_pets(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.pets import download_pets

    download_pets(args.data, task=args.task)


# ---- the command line as a whole -----------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Train an image classifier on your photos, then check, predict, "
                    "export and demo it. Each command has its own --help.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser, required=True)
    add_check_data(commands)
    add_train(commands)
    add_predict(commands)
    add_export(commands)
{%- if cookiecutter.include_demo == "yes" %}
    add_demo(commands)
{%- endif %}
    add_download_pets(commands)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; an unknown flag is refused with the closest valid one suggested."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        valid = getattr(args, "flags", [])
        close = difflib.get_close_matches(flag.split("=")[0], valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UsageError(f"unknown argument {flag}.{hint}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m``."""
    try:
        args = parse(argv)
        args.handler(args)
    except UserError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("Stopped by Ctrl+C. A training run continues with: train --resume runs/<name>", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            # train names its run folder itself (run_folder.discard_if_unused); this is every other command.
            print("Error: the disk is full; free some space and run the command again.", file=sys.stderr)
            sys.exit(1)
        raise
    finally:
        # The command is over. Python's last garbage collection would now walk every object that torch
        # and Lightning made, for seconds (6 s after a training run on 2 cores); freezing them lets the
        # process exit at once. Files, logs and threads still close as usual.
        gc.freeze()


if __name__ == "__main__":
    main()
