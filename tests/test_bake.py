"""Baking: every option combination renders, with exactly the expected files and no leftover Jinja."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CHOICES, bake

# Files every generated project has, whatever the answers (package folder written as PKG).
EVERY_PROJECT = {
    ".cookiecutter.json", ".gitignore", "README.md", "pyproject.toml", "configs/default.yaml",
    # The package's own files are not listed here: they are read from the baked README's layout
    # (layout_files below), the project's one list of them, which its own tests keep true.
    "src/PKG/__init__.py", "src/PKG/__main__.py",
    # the tests, mirroring src/PKG/, and their helpers
    "tests/__init__.py", "tests/conftest.py", "tests/messy_data.py", "tests/bad_uploads.py", "tests/loopback.py",
    "tests/test_config.py", "tests/test_device.py", "tests/test_data.py", "tests/test_train.py",
    "tests/test_predict.py", "tests/test_gpu.py", "tests/test_imports.py", "tests/test_readme.py",
    "tests/test_errors.py",
    "tests/model/__init__.py", "tests/model/test_classifier.py", "tests/model/test_network.py",
    "tests/dataset/__init__.py", "tests/dataset/test_files.py", "tests/dataset/test_decode.py",
    "tests/dataset/test_inspection.py", "tests/dataset/test_folders.py", "tests/dataset/test_balance.py",
    "tests/dataset/test_parallel.py", "tests/dataset/test_cache.py", "tests/dataset/test_duplicates.py",
    "tests/dataset/test_check_data.py", "tests/dataset/test_pets.py",
    "tests/training/__init__.py", "tests/training/test_processes.py", "tests/training/test_lr_finder.py",
    "tests/reporting/__init__.py", "tests/reporting/test_dashboard.py", "tests/reporting/test_report.py",
    "tests/run_folder/__init__.py", "tests/run_folder/test_folder.py",
    "tests/sharing/__init__.py", "tests/sharing/test_export.py", "tests/sharing/test_serving.py",
    "tests/sharing/test_space.py",
    "tests/review/__init__.py", "tests/review/conftest.py", "tests/review/test_changes.py",
    "tests/review/test_scores.py", "tests/review/test_page.py",
}
# Files that exist only when their option is chosen: one set per option value.
OPTION_FILES = {
    ("include_demo", "yes"): {"tests/sharing/test_demo.py"},  # demo.py: in the README layout when chosen
    ("license", "MIT"): {"LICENSE"},
    ("license", "Apache-2.0"): {"LICENSE"},
    ("license", "BSD-3-Clause"): {"LICENSE"},
}

COMBINATIONS = [dict(zip(CHOICES, values, strict=True)) for values in itertools.product(*CHOICES.values())]


def layout_files(project: Path) -> set[str]:
    """The package's files as the baked README's layout lists them ("model/" stands for
    model/__init__.py), as paths from the project's root with PKG for the package."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layout.*?-->\n```\n(.*?)```\n<!-- /layout -->", readme, re.S).group(1)
    files, folder = set(), ""
    for line in block.splitlines():
        if match := re.match(r"^  (\w+/) ", line):
            folder = match.group(1)
            files.add(f"src/PKG/{folder}__init__.py")
        elif match := re.match(r"^  (\w+\.py) ", line):
            files.add(f"src/PKG/{match.group(1)}")
        elif match := re.match(r"^    (\w+\.py) ", line):
            files.add(f"src/PKG/{folder}{match.group(1)}")
    assert {"src/PKG/config.py", "src/PKG/train.py", "src/PKG/model/__init__.py"} <= files  # the parse worked
    return files


def expected_files(answers: dict[str, str], package: str, project: Path) -> set[str]:
    files = set(EVERY_PROJECT) | layout_files(project)
    for (key, value), extra in OPTION_FILES.items():
        if answers.get(key) == value:
            files |= extra
    return {name.replace("PKG", package) for name in files}


def project_files(project: Path) -> set[str]:
    ignored = ("__pycache__", ".pytest_cache", ".ruff_cache")
    return {p.relative_to(project).as_posix() for p in project.rglob("*")
            if p.is_file() and not any(part in ignored for part in p.parts)}


@pytest.mark.parametrize("answers", COMBINATIONS, ids=lambda a: "-".join(a.values()))
def test_every_combination_bakes_exactly_the_expected_files(tmp_path: Path, answers: dict[str, str]) -> None:
    """All choice combinations render, with exactly the expected files and no Jinja left in any of them."""
    project = bake(tmp_path, **answers)
    assert project.name == "pet-classifier"
    assert project_files(project) == expected_files(answers, "pet_classifier", project)
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, path
            assert "cookiecutter." not in text, path


def test_answers_are_saved_in_the_project(tmp_path: Path) -> None:
    """.cookiecutter.json records the answers, so the project can be regenerated or upgraded."""
    project = bake(tmp_path, project_name="Bird Watcher", backbone="resnet50", include_demo="no")
    saved = json.loads((project / ".cookiecutter.json").read_text())
    assert saved["project_name"] == "Bird Watcher" and saved["project_slug"] == "bird-watcher"
    assert saved["package_name"] == "bird_watcher" and saved["backbone"] == "resnet50"
    assert saved["include_demo"] == "no"


def test_names_are_derived_from_the_project_name(tmp_path: Path) -> None:
    """The folder, command and import names all come from the project name."""
    project = bake(tmp_path, project_name="Bird Watcher")
    assert project.name == "bird-watcher"
    assert (project / "src" / "bird_watcher" / "cli" / "__init__.py").is_file()
    assert 'bird-watcher = "bird_watcher.cli:main"' in (project / "pyproject.toml").read_text()


def test_chosen_backbone_and_image_size_become_the_defaults(tmp_path: Path) -> None:
    project = bake(tmp_path, backbone="convnext_tiny", image_size="160")
    config = (project / "configs" / "default.yaml").read_text()
    assert "backbone: convnext_tiny" in config and "image_size: 160" in config
    source = (project / "src" / "pet_classifier" / "config.py").read_text()
    assert '"convnext_tiny"' in source and "160" in source


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("Émile's \"Pets\"", "emile-s-pets", "emile_s_pets"),
        ("Café Classifier", "cafe-classifier", "cafe_classifier"),
        ("'; import os; os.system('touch pwned') #", "import-os-os-system-touch-pwned",
         "import_os_os_system_touch_pwned"),
    ],
)
def test_awkward_project_names_render_safely(tmp_path: Path, name: str, slug: str, package: str) -> None:
    """Quotes, apostrophes, unicode and code-like names are rendered as text, never executed."""
    project = bake(tmp_path, project_name=name)
    assert project.name == slug
    assert (project / "src" / package).is_dir()
    assert name in (project / "README.md").read_text(encoding="utf-8")
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


# Every text prompt, with what breaks code pasted into Python, TOML, JSON, Markdown or Jinja: quotes,
# three quotes in a row, a Windows path's backslashes, a new line, emoji, a would-be Jinja tag, code.
# cookiecutter renders a --no-input answer once as a template (interactively typed ones are not), so
# {% raw %} passes the braces through that one rendering: the project must then show them as typed.
AWKWARD_ANSWERS = {
    "project_name": 'Zoë\'s "Pets" C:\\x',  # a package name as long as pet_classifier: lines stay in ruff's limit
    "description": ('Photos from C:\\Users\\me\\Pictures, "quoted", \'\'\'single\'\'\' and """triple"""; '
                    "import os; os.system('touch pwned') #\\\n{% raw %}{{ 7 * 7 }}{% endraw %}\ta second line 🐱 "
                    "that is long enough to go past the line length that ruff checks in the project it lands in"),
    "author_name": 'Zoë O\'Brien "Bob" \\ {% raw %}{% if %}{% endraw %} 🐱',
}
TYPED = {key: value.replace("{% raw %}", "").replace("{% endraw %}", "") for key, value in AWKWARD_ANSWERS.items()}
AWKWARD_PACKAGE = "zoe_s_pets_c_x"


@pytest.fixture(scope="module")
def awkward_project(tmp_path_factory) -> Path:
    return bake(tmp_path_factory.mktemp("awkward"), **AWKWARD_ANSWERS)


def test_every_text_answer_stays_data(awkward_project: Path) -> None:
    """Quotes, backslashes, three quotes, new lines, braces and emoji in every text prompt bake into a project
    whose pyproject.toml and .cookiecutter.json read back the answers as typed, whose package imports with
    the description as its docstring, whose command line answers, and which ruff passes; nothing ran."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = awkward_project
    assert project.name == "zoe-s-pets-c-x"
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["description"] == TYPED["description"].replace("\n", " ")  # package metadata is one line
    assert metadata["authors"] == [{"name": TYPED["author_name"]}]
    saved = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))
    assert {key: saved[key] for key in TYPED} == TYPED
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert TYPED["project_name"] in readme and TYPED["description"] in readme
    assert TYPED["author_name"] in (project / "LICENSE").read_text(encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(project / "src"), HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    docstring = subprocess.run([sys.executable, "-c", f"import {AWKWARD_PACKAGE}; print({AWKWARD_PACKAGE}.__doc__)"],
                               cwd=project, env=env, capture_output=True, text=True, encoding="utf-8")
    assert docstring.returncode == 0, docstring.stderr
    assert docstring.stdout == TYPED["description"] + "\n"
    helped = subprocess.run([sys.executable, "-m", AWKWARD_PACKAGE, "--help"], cwd=project, env=env,
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "train" in helped.stdout, helped.stderr
    linted = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests"], cwd=project,
                            capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert not list(project.parent.rglob("pwned")) and not Path("pwned").exists()


# The tests that read what the answers become: the package name in imports and checkpoints (model), the
# description and author in the README, --help, the Space's README and the export (sharing); the rest of the
# suite does not see the answers and runs on the default bake.
AWKWARD_TESTS = ("tests/test_imports.py", "tests/test_readme.py", "tests/test_config.py", "tests/model",
                 "tests/sharing")


@pytest.mark.slow
def test_the_awkward_project_builds_and_passes_its_own_quick_tests(awkward_project: Path, tmp_path: Path) -> None:
    """The same project builds as a wheel (its metadata is valid) and passes its own fast test suite."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(awkward_project)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert list(tmp_path.glob(f"{AWKWARD_PACKAGE}-0.1.0-*.whl"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           *AWKWARD_TESTS],
                          cwd=awkward_project, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(awkward_project / "src"), HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


@pytest.mark.parametrize("example_dataset", ["oxford-pets", "none"])
def test_readme_shows_download_pets_only_when_oxford_pets_is_chosen(tmp_path: Path, example_dataset: str) -> None:
    """Choosing the Oxford-IIIT Pet example puts its one download command in the README."""
    project = bake(tmp_path, example_dataset=example_dataset)
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert ("pet-classifier download-pets data/oxford-pets" in readme) == (example_dataset == "oxford-pets")
    assert "\n\n\n" not in readme  # the optional section leaves no gap behind
