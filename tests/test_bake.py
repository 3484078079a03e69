"""Baking: every option combination renders, with exactly the expected files and no leftover Jinja."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from .conftest import CHOICES, bake

# Files every generated project has (package folder written as PKG).
COMMON_FILES = {
    ".cookiecutter.json", ".gitignore", "README.md", "pyproject.toml", "configs/default.yaml",
    "src/PKG/__init__.py", "src/PKG/__main__.py", "src/PKG/cli.py", "src/PKG/config.py", "src/PKG/errors.py",
    "src/PKG/device.py", "src/PKG/images.py", "src/PKG/data.py", "src/PKG/model.py", "src/PKG/callbacks.py",
    "src/PKG/run_folder.py", "src/PKG/train.py",
    "tests/__init__.py", "tests/conftest.py", "tests/test_config.py", "tests/test_device.py", "tests/test_model.py",
    "tests/test_train.py", "tests/test_readme.py", "tests/test_gpu.py",
}
# Files that exist only when their option is chosen.
OPTIONAL_FILES = {
    ("include_demo", "yes"): {"src/PKG/demo.py", "tests/test_demo.py"},
    ("license", "MIT"): {"LICENSE"},
    ("license", "Apache-2.0"): {"LICENSE"},
    ("license", "BSD-3-Clause"): {"LICENSE"},
}
EXPECTED_FILES = COMMON_FILES  # extended below by the feature sections
# Data you can trust: check-data, robust image loading, Oxford-IIIT Pet.
EXPECTED_FILES = EXPECTED_FILES | {
    "src/PKG/audit.py", "src/PKG/folders.py", "src/PKG/pets.py", "tests/messy_data.py",
    "tests/test_images.py", "tests/test_data.py", "tests/test_audit.py", "tests/test_pets.py",
}
# From model to people: predict, export (the standalone bundle script), demo (optional, above).
EXPECTED_FILES = EXPECTED_FILES | {
    "src/PKG/predict.py", "src/PKG/export.py", "src/PKG/bundle_predict.py",
    "tests/test_predict.py", "tests/test_export.py",
}
# Sharing it: the Hugging Face Space (export --format space) and the upload checks it shares with demo.
EXPECTED_FILES = EXPECTED_FILES | {
    "src/PKG/serving.py", "src/PKG/space_app.py",
    "tests/test_serving.py", "tests/test_space.py", "tests/bad_uploads.py", "tests/loopback.py",
}
# Performance and scale: the decode cache, the multi-process (DDP) test.
EXPECTED_FILES = EXPECTED_FILES | {"src/PKG/cache.py", "tests/test_cache.py", "tests/test_ddp.py"}

# The beginner's dashboard: TensorBoard pictures and tables, report.md, the LR finder.
EXPECTED_FILES = EXPECTED_FILES | {
    "src/PKG/dashboard.py", "src/PKG/report.py", "src/PKG/lr_finder.py",
    "tests/test_dashboard.py", "tests/test_report.py", "tests/test_lr_finder.py",
}

COMBINATIONS = [dict(zip(CHOICES, values, strict=True)) for values in itertools.product(*CHOICES.values())]


def expected_files(answers: dict[str, str], package: str) -> set[str]:
    files = set(EXPECTED_FILES)
    for (key, value), extra in OPTIONAL_FILES.items():
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
    assert project_files(project) == expected_files(answers, "pet_classifier")
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
    assert (project / "src" / "bird_watcher" / "cli.py").is_file()
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


@pytest.mark.parametrize("example_dataset", ["oxford-pets", "none"])
def test_readme_shows_download_pets_only_when_oxford_pets_is_chosen(tmp_path: Path, example_dataset: str) -> None:
    """Choosing the Oxford-IIIT Pet example puts its one download command in the README."""
    project = bake(tmp_path, example_dataset=example_dataset)
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert ("pet-classifier download-pets data/oxford-pets" in readme) == (example_dataset == "oxford-pets")
    assert "\n\n\n" not in readme  # the optional section leaves no gap behind
