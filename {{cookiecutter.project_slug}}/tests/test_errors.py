"""Paths in the commands we print can be pasted into any shell."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import errors
from {{ cookiecutter.package_name }}.errors import shell_quote


def test_plain_paths_stay_as_they_are() -> None:
    """A path of letters, digits and . / - _ is printed unquoted: nothing to get wrong."""
    assert shell_quote(Path("runs/cats-v2_1.0")) == "runs/cats-v2_1.0"
    assert shell_quote("runs/chats-été") == "runs/chats-été"


@pytest.mark.parametrize("path", ["runs/my cats", "data/[old]/x", "runs/a*b", "runs/it's", "Fotos (1)/x"])
def test_awkward_paths_are_double_quoted_and_read_back_whole(path: str) -> None:
    """Spaces, brackets (a file pattern to zsh), stars, apostrophes: in double quotes, which every shell reads
    (Windows' cmd has no single quotes), and a POSIX shell reads the quoted text back as the same path."""
    quoted = shell_quote(path)
    assert quoted == f'"{path}"'
    assert shlex.split(quoted) == [path]


@pytest.mark.parametrize("path", ["runs/$HOME", "runs/a`b`", "runs/wow!", 'runs/say "hi"', "runs/back\\slash"])
def test_text_a_posix_shell_expands_inside_double_quotes_is_single_quoted(path: str, monkeypatch) -> None:
    """On macOS and Linux, $, backticks, ! and backslashes would change inside double quotes."""
    monkeypatch.setattr(errors.os, "name", "posix")
    quoted = shell_quote(path)
    assert quoted.startswith("'") and shlex.split(quoted) == [path]


def test_windows_paths_use_double_quotes_only(monkeypatch) -> None:
    """On Windows backslashes are folder separators: plain as they are, double quotes around a space."""
    monkeypatch.setattr(errors.os, "name", "nt")
    assert shell_quote("runs\\cats") == "runs\\cats"
    assert shell_quote("C:\\Users\\me\\my runs\\cats") == '"C:\\Users\\me\\my runs\\cats"'
