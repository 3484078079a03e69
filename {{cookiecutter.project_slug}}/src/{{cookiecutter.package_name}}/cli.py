"""The ``{{ cookiecutter.project_slug }}`` command: one subcommand per job.

    {{ cookiecutter.project_slug }} check-data data/my-pets          look for problems in a dataset folder
    {{ cookiecutter.project_slug }} train --data data/my-pets        fine-tune a classifier
    {{ cookiecutter.project_slug }} train --help                     every training flag, by topic
    {{ cookiecutter.project_slug }} review runs/<name>               find and fix photos in the wrong class folder

Train's flags come from ``config.Config``, the others' from dataset/ and sharing/commands.py. Heavy
libraries (torch, Lightning) are imported only when a command runs, so ``--help`` and typos answer at
once. Mistakes a user can fix raise ``UserError`` and end here as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import errno
import gc
import sys
from collections.abc import Sequence

from {{ cookiecutter.package_name }}.config import FIELDS, GROUP_TITLES, load_config, make_config
from {{ cookiecutter.package_name }}.dataset.commands import add_check_data, add_download_pets
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.review.commands import add_review
from {{ cookiecutter.package_name }}.sharing import commands
from {{ cookiecutter.package_name }}.training.settings import Parser, add_flags, parse_or_suggest


def run_train(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.train import train
    from {{ cookiecutter.package_name }}.training.run_folder import find_resume, resume_settings

    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    cfg = load_config(args.config, overrides)
    resume = find_resume(cfg.resume) if cfg.resume else None
    if resume:  # the run's saved settings, with any given now on top (e.g. more --epochs)
        now = {**(load_config(args.config).to_dict() if args.config else {}), **overrides}
        cfg = make_config(resume_settings(resume[0], now), str(resume[0].config))
    train(cfg, resume)


def run_predict(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.predict import predict

    predict(args.model, args.images, top_k=args.top_k, csv_path=args.csv, threshold=args.threshold,
            batch_size=args.batch_size, accelerator=args.accelerator)


def load_classifier(path: str, accelerator: str = "auto"):
    """``predict.load_classifier`` for export, demo and review, imported when they run (it brings in PyTorch)."""
    from {{ cookiecutter.package_name }}.predict import load_classifier

    return load_classifier(path, accelerator)


def build_parser() -> Parser:
    parser = Parser(prog="{{ cookiecutter.project_slug }}", description="Train an image classifier on your photos, "
                    "then check, predict, export{% if cookiecutter.include_demo == "yes" %} and demo{% endif %} it. "
                    "Each command has its own --help.")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", parser_class=Parser,
                                        required=True)
    add_check_data(subcommands)
    train = subcommands.add_parser(
        "train", help="fine-tune a pretrained backbone on a folder of images",
        description="Fine-tune a pretrained timm backbone on DATA/train/<class>/ images. "
        "Flags override the --config file, which overrides the defaults in configs/default.yaml.")
    add_flags(train, FIELDS, GROUP_TITLES)  # --config FILE, then one --flag per Config setting, by topic
    train.set_defaults(handler=run_train)
    commands.add_predict(subcommands, run_predict)
    commands.add_export(subcommands, load_classifier)
{%- if cookiecutter.include_demo == "yes" %}
    commands.add_demo(subcommands, load_classifier)
{%- endif %}
    add_download_pets(subcommands)
    add_review(subcommands, load_classifier)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m``."""
    try:
        args = parse_or_suggest(build_parser(), argv)  # an unknown flag: the closest valid one is suggested
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
