"""The flags of ``check-data`` and ``download-pets``; cli.py puts every command's flags together.

What each command runs is imported when it runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse


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
