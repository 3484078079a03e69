"""The baked default project passes its own test suite and linter, offline, on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from jinja2 import Template

TEMPLATE = Path(__file__).resolve().parents[1]


def project_env(project: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(project / "src"), HF_HUB_OFFLINE="1")
    return env


def test_generated_project_lints_clean(default_project: Path) -> None:
    """ruff finds nothing in the generated source and tests."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests"], cwd=default_project,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rendered_hooks_lint_clean(tmp_path: Path) -> None:
    """The hooks, rendered as cookiecutter renders them, are valid, clean Python."""
    context = {"cookiecutter": {"project_slug": "pet-classifier", "package_name": "pet_classifier",
                                "image_size": "224", "include_demo": "yes", "license": "MIT"}}
    for hook in (TEMPLATE / "hooks").glob("*.py"):
        (tmp_path / hook.name).write_text(Template(hook.read_text()).render(**context))
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--line-length", "120", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.slow
def test_generated_project_passes_its_own_tests(default_project: Path) -> None:
    """`pytest` inside the baked project passes (it trains, predicts and exports for real)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=default_project,
                          env=project_env(default_project), capture_output=True, text=True)
    print(done.stdout[-5000:])
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
