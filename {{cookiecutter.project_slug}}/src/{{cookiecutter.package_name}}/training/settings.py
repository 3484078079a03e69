"""Reading settings strictly: a YAML file, a value typed on the command line, a --flag per setting.

config.py holds the settings themselves (``Config``); this is how text becomes them. A misspelt key
or a wrong type stops with one line that names the key and what it expects, because a typo that
silently falls back to a default wastes an afternoon of training. ``Parser`` does the same for the
command line: a mistake is one line, and an unknown flag gets the closest one suggested.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from {{ cookiecutter.package_name }}.errors import UsageError, UserError

AUTO = "auto"


def expected(kind: Any, choices: tuple[str, ...] = ()) -> str:
    """How to describe the type a setting expects, in words."""
    if choices:
        return "one of " + ", ".join(choices)
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "text",
        int | str: "auto or a whole number",
        float | str: "auto or a number",
        str | None: "text or null",
    }[kind]


def coerce(key: str, value: Any, kind: Any, choices: tuple[str, ...] = ()) -> Any:
    """Convert ``value`` (from YAML or the command line) to ``kind``, the type of ``key``, or fail clearly."""
    text = str(value).strip().lower() if value is not None else None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if text in ("true", "yes", "1"):
                return True
            if text in ("false", "no", "0"):
                return False
            raise ValueError
        if kind is str and choices:
            if text not in choices:
                raise ValueError
            return text
        if kind is str:
            if value is None or isinstance(value, bool):
                raise ValueError
            return str(value)
        if kind == str | None:
            return None if value is None or text in ("null", "none", "") else str(value)
        if text == AUTO and kind in (int | str, float | str):
            return AUTO
        if kind in (int, int | str):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value))
        if kind in (float, float | str):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
    except (TypeError, ValueError):
        pass
    raise UsageError(f"config key '{key}' expects {expected(kind, choices)}, got {value!r}.")


def closest_key(name: str, keys: Iterable[str]) -> str:
    """' Did you mean X?' for a misspelt key, or '' when nothing is close."""
    match = difflib.get_close_matches(name.replace("-", "_"), list(keys), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with one-line errors for the usual mistakes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; check the path or copy configs/default.yaml.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"config file {path} is not valid YAML{where}; fix it and try again.") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must be a list of 'key: value' lines.")
    return values


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
