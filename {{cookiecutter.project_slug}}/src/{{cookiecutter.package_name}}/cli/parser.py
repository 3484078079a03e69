"""The command line's rules: one --flag per setting, a mistake is one line, and an unknown flag gets
the closest one suggested."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Sequence

from {{ cookiecutter.package_name }}.errors import UsageError


def add_flags(parser: argparse.ArgumentParser, fields: dict[str, dataclasses.Field],
              group_titles: dict[str, str]) -> None:
    """One --flag per setting (``epochs`` -> ``--epochs``), in the help group its field names, with its
    help text and default; first ``--config FILE``. Flags left out stay None, so the file or the defaults decide."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (see configs/default.yaml)")
    groups = {key: parser.add_argument_group(title) for key, title in group_titles.items()}
    for name, spec in fields.items():
        flag = "--" + name.replace("_", "-")
        group = groups[spec.metadata["group"]]
        help_text = f"{spec.metadata['help']} (default: {spec.default})"
        if isinstance(spec.default, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = spec.metadata["choices"]
            metavar = "|".join(choices) if choices else name.split("_")[-1].upper()
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake raises ``UsageError`` (one line) instead of printing usage.
    No abbreviations: --epoch must not silently mean --epochs (the closest flag is suggested instead)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def parse_or_suggest(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; an unknown flag is refused with the closest valid flag of its command."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = commands.choices.get(getattr(args, "command", None), parser)  # the flags of that command
        valid = [option for action in command._actions for option in action.option_strings]
        close = difflib.get_close_matches(flag.split("=")[0], valid, n=1, cutoff=0.5)
        raise UsageError(f"unknown argument {flag}." + (f" Did you mean {close[0]}?" if close else ""))
    return args
