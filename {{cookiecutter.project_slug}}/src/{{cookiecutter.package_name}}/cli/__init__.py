"""The ``{{ cookiecutter.project_slug }}`` command: one subcommand per job.

    {{ cookiecutter.project_slug }} check-data data/my-pets          look for problems in a dataset folder
    {{ cookiecutter.project_slug }} train --data data/my-pets        fine-tune a classifier
    {{ cookiecutter.project_slug }} train --help                     every training flag, by topic
    {{ cookiecutter.project_slug }} review runs/<name>               find and fix photos in the wrong class folder

Each command's flags and what it runs are in cli/commands.py (train's flags come from ``config.Config``);
cli/parser.py holds the rules every flag follows. Heavy libraries (torch, Lightning) are imported only
when a command runs, so ``--help`` and typos answer at once. Mistakes a user can fix raise ``UserError``
and end here as one line, without a traceback.
"""

from __future__ import annotations

import errno
import gc
import sys
from collections.abc import Sequence

from {{ cookiecutter.package_name }}.cli import commands
from {{ cookiecutter.package_name }}.cli.parser import Parser, parse_or_suggest
from {{ cookiecutter.package_name }}.errors import UserError


def build_parser() -> Parser:
    parser = Parser(prog="{{ cookiecutter.project_slug }}", description="Train an image classifier on your photos, "
                    "then check, predict, export{% if cookiecutter.include_demo == "yes" %} and demo{% endif %} it. "
                    "Each command has its own --help.")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", parser_class=Parser,
                                        required=True)
    commands.add_check_data(subcommands)
    commands.add_train(subcommands)
    commands.add_predict(subcommands)
    commands.add_export(subcommands)
{%- if cookiecutter.include_demo == "yes" %}
    commands.add_demo(subcommands)
{%- endif %}
    commands.add_download_pets(subcommands)
    commands.add_review(subcommands)
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
