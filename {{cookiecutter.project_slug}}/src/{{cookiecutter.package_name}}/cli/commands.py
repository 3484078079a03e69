"""Each command's flags and what it runs, in the order ``--help`` lists them: check-data, train, predict,
export{% if cookiecutter.include_demo == "yes" %}, demo{% endif %}, download-pets, review.

What a command runs is imported when it runs (PyTorch, Lightning), so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from {{ cookiecutter.package_name }}.cli.parser import add_flags
from {{ cookiecutter.package_name }}.config import FIELDS, GROUP_TITLES, load_config, make_config, resume_settings
from {{ cookiecutter.package_name }}.errors import UsageError, UserError


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
    parser.set_defaults(handler=run_check_data)


def run_check_data(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.dataset.check_data import check_data

    check_data(args.data, json_path=args.json, show_all=args.all, processes=args.workers)


def add_train(commands) -> None:
    parser = commands.add_parser(
        "train", help="fine-tune a pretrained backbone on a folder of images",
        description="Fine-tune a pretrained timm backbone on DATA/train/<class>/ images. "
        "Flags override the --config file, which overrides the defaults in configs/default.yaml.")
    add_flags(parser, FIELDS, GROUP_TITLES)  # --config FILE, then one --flag per Config setting, by topic
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.run_folder.finding import find_resume
    from {{ cookiecutter.package_name }}.train import train

    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    cfg = load_config(args.config, overrides)
    resume = find_resume(cfg.resume) if cfg.resume else None
    if resume:  # the run's saved settings, with any given now on top (e.g. more --epochs)
        now = {**(load_config(args.config).to_dict() if args.config else {}), **overrides}
        cfg = make_config(resume_settings(resume[0].config, now), str(resume[0].config))
    train(cfg, resume)


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
    parser.set_defaults(handler=run_predict)


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
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.predict import load_classifier
    from {{ cookiecutter.package_name }}.sharing.export import check_options, export

    check_options(args.format, args.parity_images, args.latency_runs, args.threads)  # before the model loads
    classifier = load_classifier(args.run, accelerator="cpu")  # a bundle is for machines without a GPU too
    export(classifier, args.format, args.output, args.data, args.parity_images, args.latency_runs, args.threads)
{%- if cookiecutter.include_demo == "yes" %}


def add_demo(commands) -> None:
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
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.predict import load_classifier
    from {{ cookiecutter.package_name }}.sharing.demo import check_options, serve

    check_options(args.host, args.port, args.top_k)  # before the model loads
    serve(load_classifier(args.model), host=args.host, port=args.port, top_k=args.top_k, share=args.share)
{%- endif %}


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
    parser.set_defaults(handler=run_download_pets)


def run_download_pets(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.dataset.pets import download_pets

    download_pets(args.data, task=args.task)


def add_review(commands) -> None:
    parser = commands.add_parser(
        "review", help="find photos whose label is probably wrong, then keep, move or remove them",
        description="Score every train and val photo of a run with a model that did not see its label "
        "(cross-validated on the backbone's features, ranked by cleanlab), then show the suspects on a local "
        "page to keep, move to another class or remove. Nothing is deleted: removed photos go to "
        "DATA/.removed/<class>/, every change is logged in DATA/review-log.csv, and --undo puts them back. "
        'Needs: pip install -e ".[review]"',
    )
    parser.add_argument("run", metavar="RUN", nargs="?", help="the run folder to review (runs/<name>)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--csv", metavar="FILE", help="write the ranking of every photo to FILE instead of the page")
    what.add_argument("--apply", metavar="FILE", help="apply a CSV of path,action,class (keep, move or remove)")
    what.add_argument("--undo", metavar="DATA_DIR", help="put back the last review's changes in DATA_DIR")
    parser.add_argument("--data", metavar="DIR", help="where the run's dataset is now, if it has moved")
    parser.add_argument("--features", default="start", choices=["start", "run"],
                        help="features from the run's starting weights (default; they never saw the labels) "
                        "or from its fine-tuned network")
    parser.add_argument("--port", type=int, default=7860, help="port of the page (default: 7860)")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "mps"],
                        help="where to compute the features (default: auto)")
    parser.set_defaults(handler=run_review)


def run_review(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.review import changes

    if args.undo:
        if args.run:
            raise UsageError("review --undo takes the data folder only: review --undo data/my-pets")
        restored, notes = changes.undo_last_review(args.undo)
        for note in notes:
            print(f"Not restored: {note}")
        print(f"Put back {len(restored)} photo(s) in {args.undo}; logged in {Path(args.undo) / changes.REVIEW_LOG}.")
        return
    if not args.run:
        raise UsageError("review needs a run folder: review runs/<name> (or review --undo DATA_DIR)")
    from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder

    run = RunFolder(Path(args.run).expanduser())
    if not run.splits.is_file() or not run.labels.is_file():
        raise UserError(f"{run} is not a run folder made by train (it has no splits.csv or labels.json); "
                        "pass runs/<name>.")
    if args.apply:
        root = Path(args.data).expanduser() if args.data else run.data_folder()
        classes = json.loads(run.labels.read_text(encoding="utf-8"))
        done = changes.apply_decisions(root, changes.read_decisions(args.apply), classes, run.path.name)
        print(changes.summary_line(done, root))
        return
    from {{ cookiecutter.package_name }}.model.weights import starting_network
    from {{ cookiecutter.package_name }}.predict import load_classifier
    from {{ cookiecutter.package_name }}.review.page import check_options, serve
    from {{ cookiecutter.package_name }}.review.scores import score_photos, write_ranking
    from {{ cookiecutter.package_name }}.sharing.extras import require

    require("cleanlab", "review")
    require("sklearn", "review")
    if not args.csv:
        check_options(args.port)  # before the minutes of scoring
    classifier = load_classifier(args.run, args.accelerator)
    root, ranking = score_photos(run, classifier, starting_network, args.data, args.features)
    suspects = [photo for photo in ranking if photo.suspect]
    if args.csv:
        write_ranking(ranking, args.csv)
        print(f"Ranked {len(ranking)} photos, most suspicious first, in {args.csv}: "
              f"{len(suspects)} suspect(s) (column suspect = yes).")
        return
    kept = changes.kept_photos(root) & {photo.path for photo in suspects}
    if kept:
        print(f"{len(kept)} suspect(s) you kept in an earlier review are not shown (see {root / changes.REVIEW_LOG}).")
    serve(root, [photo for photo in suspects if photo.path not in kept], run, port=args.port)
