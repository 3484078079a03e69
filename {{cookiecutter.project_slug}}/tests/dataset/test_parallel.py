"""Decoding many files at once: the worker pool gives the same answers as one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.dataset import parallel
from {{ cookiecutter.package_name }}.dataset.parallel import check_images

from ..messy_data import make_messy_folder


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("messy") / "pets"
    return root, make_messy_folder(root)


def test_parallel_check_gives_the_same_answers_as_one_process(messy, monkeypatch) -> None:
    """The worker pool (one process per core) is used for big folders; lowered here to use it on a small one."""
    root, _ = messy
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    monkeypatch.setattr(parallel, "POOL_MIN_FILES", 1)
    pooled = check_images(paths, processes=2, progress=False)
    single = check_images(paths, processes=1, progress=False)
    assert [c.path for c in pooled] == [str(p) for p in paths]
    assert [(c.problem, c.sha1, c.dhash) for c in pooled] == [(c.problem, c.sha1, c.dhash) for c in single]
