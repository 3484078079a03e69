"""The README stays true: its project layout lists exactly the files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "{{ cookiecutter.package_name }}"


def layout_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"<!-- layout.*?-->\n```\n(.*?)```\n<!-- /layout -->", text, re.S).group(1)


def test_readme_layout_lists_every_source_file() -> None:
    """Every module in the package is described in the README, and nothing described is missing."""
    listed = set(re.findall(r"^  (\w+\.py) ", layout_block(), re.M))
    present = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert listed == present


def test_readme_layout_paths_exist() -> None:
    """The top-level paths named in the layout exist."""
    for line in layout_block().splitlines():
        if line and not line.startswith(" "):
            assert (ROOT / line.split()[0]).exists(), line
