"""Bake the template into temporary folders with cookiecutter's own Python API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
CHOICES = {key: value for key, value in json.loads((TEMPLATE / "cookiecutter.json").read_text()).items()
           if isinstance(value, list) and not key.startswith("_")}  # _extensions is a list too, not a prompt


def bake(output_dir: Path, **answers: str) -> Path:
    """Render the template with these answers (defaults for the rest); returns the project folder."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


@pytest.fixture(scope="session")
def default_project(tmp_path_factory) -> Path:
    """The project a beginner gets with `cookiecutter --no-input`."""
    return bake(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def no_demo_project(tmp_path_factory) -> Path:
    """The project without the web demo: its command line and README are trimmed by Jinja, files removed by the hook."""
    return bake(tmp_path_factory.mktemp("no-demo"), include_demo="no")
