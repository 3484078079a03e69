"""The one exception type for mistakes a user can fix.

Code anywhere in the project raises ``UserError("what is wrong; what to do")``. The command line
catches it and prints that single line instead of a traceback, then exits with ``exit_code``.
A message that ends in a command to paste names its paths through ``shell_quote``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path


class UserError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""

    exit_code = 1


class UsageError(UserError):
    """A mistake in how the command was called (unknown flag, wrong type): exit code 2."""

    exit_code = 2


class NoPretrainedWeights(UserError):
    """Pretrained weights could not be downloaded (offline, nothing cached): exit code 3, so scripts
    such as the template's ``make quickstart`` can fall back to training from scratch."""

    exit_code = 3


def shell_quote(path: str | Path) -> str:
    """``path`` as it must be typed in a command the user pastes: as it is when plain (``runs/cats``), else
    in double quotes, which zsh, bash, PowerShell and Windows' cmd all read (``"runs/my cats"``,
    ``"data/[old]"``: zsh would take the brackets for a file pattern). cmd knows no single quotes, so they
    are used only on macOS and Linux, where double quotes would not keep ``$ ` ! \\ "`` as they are."""
    text = str(path)
    windows = os.name == "nt"  # backslashes are the folder separator there, and no name holds a "
    if re.fullmatch(r"[\w@%+=:,./\\-]+" if windows else r"[\w@%+=:,./-]+", text):
        return text
    if not windows and re.search(r'[$`!"\\]', text):
        return shlex.quote(text)
    return f'"{text}"'
