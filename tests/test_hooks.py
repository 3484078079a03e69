"""The pre-generation hook refuses names that would break the project, in one line, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException

from .conftest import bake


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "3D Pets"}, "must start with a letter"),
        ({"project_name": "Pets", "package_name": "class"}, "is a Python keyword"),
        ({"project_name": "Torch", "package_name": "torch"}, "would shadow"),
        ({"project_name": "Pets", "package_name": "json"}, "would shadow"),
        ({"project_name": "Pets", "package_name": "my-pets"}, "not a valid Python import name"),
        ({"project_name": "Pets", "package_name": "pets\"; import os #"}, "not a valid Python import name"),
        ({"project_name": "Pets", "project_slug": "My Pets"}, "project_slug"),
        ({"image_size": "big"}, "image_size"),
        ({"image_size": "8"}, "image_size"),
    ],
)
def test_invalid_answers_are_refused_with_one_line(tmp_path: Path, capfd, answers: dict, message: str) -> None:
    """Each invalid answer stops cookiecutter with exit 1 and one line naming the problem."""
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    err = capfd.readouterr().err.strip()
    assert err.startswith("ERROR: ") and message in err and err.count("\n") == 0
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_demo_files_are_removed_when_not_chosen(tmp_path: Path) -> None:
    """include_demo=no removes the demo module and its test, and nothing else."""
    with_demo = bake(tmp_path / "a", include_demo="yes")
    without = bake(tmp_path / "b", include_demo="no")
    removed = {p.relative_to(with_demo).as_posix() for p in with_demo.rglob("*") if p.is_file()} - {
        p.relative_to(without).as_posix() for p in without.rglob("*") if p.is_file()}
    assert removed == {"src/pet_classifier/sharing/demo.py", "tests/sharing/test_demo.py"}
