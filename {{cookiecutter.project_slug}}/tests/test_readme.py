"""The README stays true: its project layout lists exactly the files that exist, and "Read the code"
walks through the recipe in the order it runs, then names every subpackage. Every install line the
project shows (README, help, errors) can be pasted into any shell."""

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


# `pip install` and, later on the same line (before a comment or the end of a `code span`), a word that
# reaches a `[` without starting with a quote: zsh, macOS's shell, reads it as a file pattern and refuses.
UNQUOTED_EXTRA = re.compile(r"""pip install\b[^\n#`]*?\s(?![\\"'])[^\s"'`]*\[""")
OWN_EXTRA = re.compile(r"""(?<![\\"'])\.\[[a-z]""")  # `.[demo]` named anywhere, e.g. "(needs .[demo])"


def shown_text() -> dict[str, str]:
    """What a user reads or pastes from: the README, the configs, the package's help texts, messages and
    docstrings, and the tests' skip reasons."""
    files = [ROOT / "README.md", ROOT / "pyproject.toml", *sorted((ROOT / "configs").rglob("*.yaml")),
             *sorted(PACKAGE.rglob("*.py")), *sorted((ROOT / "tests").rglob("*.py"))]
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in files
            if p.resolve() != Path(__file__).resolve()}


def test_install_lines_quote_their_extras() -> None:
    """Every `pip install` of an extra quotes it (`pip install -e ".[demo]"`), wherever the project shows it."""
    unquoted = [f"{name}: {line.strip()}" for name, text in shown_text().items() for line in text.splitlines()
                if UNQUOTED_EXTRA.search(line) or OWN_EXTRA.search(line)]
    assert not unquoted, "quote the extras (zsh refuses them bare):\n" + "\n".join(unquoted)


def test_the_unquoted_extra_check_finds_what_zsh_refuses() -> None:
    """The check above flags the lines zsh refuses and passes the quoted ones."""
    refused = ["pip install -e .[all]", "Needs: pip install -e .[export]\",", "`pip install -U pet[demo]`",
               "pip install -q -e .[dev]  # tools", "add .[all] for the demo", 'f"pip install -e .[{extra}]"']
    fine = ['pip install -e ".[all]"', "pip install -e '.[dev]'", 'reason=\'needs: pip install -e ".[demo]"\'',
            "pip install onnxruntime numpy pillow  # see [1]", 'f\'pip install -e ".[{extra}]"\'',
            'Needs: pip install -e \\".[export]\\"', "x = values[0]"]
    assert all(UNQUOTED_EXTRA.search(line) or OWN_EXTRA.search(line) for line in refused)
    assert not any(UNQUOTED_EXTRA.search(line) or OWN_EXTRA.search(line) for line in fine)
