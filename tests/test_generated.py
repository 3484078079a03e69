"""The baked projects pass their own test suite and linter, offline, on the CPU: the default one and the
one without the demo (its command line, README and pyproject are trimmed by Jinja)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from jinja2 import Template

TEMPLATE = Path(__file__).resolve().parents[1]
VARIANTS = {"default": "default_project", "no-demo": "no_demo_project"}


def project_env(project: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(project / "src"), HF_HUB_OFFLINE="1")


def run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          env=project_env(project), capture_output=True, text=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_project_lints_clean(variant: str, request) -> None:
    """ruff finds nothing in the generated source and tests."""
    project = request.getfixturevalue(VARIANTS[variant])
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests"], cwd=project,
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


def test_the_project_without_demo_has_no_demo_command(no_demo_project: Path) -> None:
    """The trimmed command line knows every other command and refuses `demo` in one line."""
    done = subprocess.run([sys.executable, "-m", "pet_classifier", "demo", "runs/x"], cwd=no_demo_project,
                          env=project_env(no_demo_project), capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice: 'demo'" in done.stderr and "Traceback" not in done.stderr
    helped = subprocess.run([sys.executable, "-m", "pet_classifier", "--help"], cwd=no_demo_project,
                            env=project_env(no_demo_project), capture_output=True, text=True)
    assert helped.returncode == 0 and "export" in helped.stdout and "demo" not in helped.stdout.split("commands:")[1]


@pytest.mark.slow
def test_generated_project_passes_its_own_tests(default_project: Path) -> None:
    """`pytest` inside the baked project passes (it trains, predicts and exports for real)."""
    done = run_pytest(default_project)
    print(done.stdout[-5000:])
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


# What a bake without the demo changes (sharing/demo.py, its test, the demo command and its README lines)
# and so the tests that read those; the rest of its suite is the default bake's, which runs in full above.
NO_DEMO_TESTS = ("tests/test_imports.py", "tests/test_readme.py", "tests/sharing", "tests/test_config.py")


@pytest.mark.slow
def test_project_without_demo_passes_its_own_quick_tests(no_demo_project: Path) -> None:
    """The variant's own tests of what it changes, without the slow ones (the full suite runs on the default
    bake above, and the two differ only in the demo): the command line, README layout, imports, sharing."""
    done = run_pytest(no_demo_project, "-m", "not slow", *NO_DEMO_TESTS)
    print(done.stdout[-5000:])
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
