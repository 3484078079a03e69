"""The README stays true: its project layout lists exactly the files that exist, and "Read the code"
walks through the recipe in the order it runs, then names every subpackage."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "{{ cookiecutter.package_name }}"
RECIPE = ["config.py", "device.py", "data.py", "model.py", "train.py", "predict.py"]  # the order they run in


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def layout_block() -> str:
    return re.search(r"<!-- layout.*?-->\n```\n(.*?)```\n<!-- /layout -->", readme(), re.S).group(1)


def subpackages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_readme_layout_lists_every_source_file() -> None:
    """Every module in the package is described in the README, in its folder, and nothing described is missing."""
    listed, folder = set(), ""
    for line in layout_block().splitlines():
        if match := re.match(r"^  (\w+)/ ", line):
            folder = match.group(1) + "/"
        elif match := re.match(r"^  (\w+\.py) ", line):
            listed.add(match.group(1))
        elif match := re.match(r"^    (\w+\.py) ", line):
            listed.add(folder + match.group(1))
    present = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert listed == present


def test_readme_layout_paths_exist() -> None:
    """The top-level paths named in the layout exist."""
    for line in layout_block().splitlines():
        if line and not line.startswith(" "):
            assert (ROOT / line.split()[0]).exists(), line


def test_read_the_code_gives_the_recipe_in_order_then_every_subpackage() -> None:
    """Each recipe file has its numbered line, in the order train runs them; each subpackage is named."""
    section = readme().split("## Read the code", 1)[1].split("\n## ", 1)[0]
    numbered = re.findall(r"^\d+\. `(\w+\.py)`", section, re.M)
    assert numbered == RECIPE
    assert all((PACKAGE / name).is_file() for name in numbered)
    named = set(re.findall(r"^- `(\w+)/`", section, re.M))
    assert named == subpackages() and len(named) >= 2
