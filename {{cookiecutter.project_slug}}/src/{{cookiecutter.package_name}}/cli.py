"""The ``{{ cookiecutter.project_slug }}`` command: one subcommand per job.

    {{ cookiecutter.project_slug }} train --data data/my-pets        fine-tune a classifier
    {{ cookiecutter.project_slug }} train --help                     every training flag, by topic

Heavy libraries (torch, Lightning) are imported inside each command, so ``--help`` and typos answer
at once. Mistakes a user can fix raise ``UserError`` and end here as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import errno
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
    parser.set_defaults(handler=run_train, flags=[a for action in parser._actions for a in action.option_strings])


def run_train(args: argparse.Namespace) -> None:
    from {{ cookiecutter.package_name }}.run_folder import find_resume, resume_config
    from {{ cookiecutter.package_name }}.train import train

    overrides = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    cfg = load_config(args.config, overrides)
    if cfg.resume:
        run, _ = find_resume(cfg.resume)
        cfg = resume_config(run, args.config, overrides)
    train(cfg)


# ---- the command line as a whole -----------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser, required=True)
    add_train(commands)
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
            print("Error: the disk is full; free some space, then continue with train --resume runs/<name>.",
                  file=sys.stderr)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
