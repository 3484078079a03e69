"""The README stays true: its project layout lists exactly the files that exist, and "Read the code"
walks through the recipe in the order it runs, then names every subpackage."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import package_layout

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "{{ cookiecutter.package_name }}"


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def layout_block() -> str:
    return re.search(r"<!-- layout.*?-->\n```\n(.*?)```\n<!-- /layout -->", readme(), re.S).group(1)


def subpackages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_readme_layout_lists_every_source_file() -> None:
    """Every module in the package is described in the README, in its folder, and nothing described is missing;
    every folder it lists is a package."""
    listed = package_layout()
    assert len(listed) == len(set(listed))
    present = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert {entry for entry in listed if not entry.endswith("/")} == present
    assert {entry.rstrip("/") for entry in listed if re.fullmatch(r"\w+/", entry)} == subpackages()


def test_readme_layout_paths_exist() -> None:
    """The top-level paths named in the layout exist."""
    for line in layout_block().splitlines():
        if line and not line.startswith(" "):
            assert (ROOT / line.split()[0]).exists(), line


def test_read_the_code_gives_the_recipe_in_order_then_every_subpackage() -> None:
    """Each recipe file or folder has its numbered line, in the order of the layout (the order train runs
    them); the command line, errors.py and every folder of machinery are named after them."""
    section = readme().split("## Read the code", 1)[1].split("\n## ", 1)[0]
    numbered = re.findall(r"^\d+\. `(\w+(?:\.py|/))`", section, re.M)
    machinery = re.findall(r"^- `(\w+/)`", section, re.M)
    top = [entry for entry in package_layout() if "/" not in entry.rstrip("/")]
    assert numbered == [entry for entry in top if entry not in {*machinery, "cli/", "errors.py"}]
    assert len(numbered) == 6 and len(machinery) >= 2
    assert all((PACKAGE / name).exists() for name in numbered)
    assert all(f"`{name}/`" in section for name in subpackages())
