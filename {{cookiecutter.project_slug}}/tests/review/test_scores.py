"""review --csv: every train and val photo scored by a model that did not see its label, most suspicious first."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from ..conftest import TINY_MODEL, run_cli
from .conftest import FLIPPED

pytest.importorskip("cleanlab", reason="review needs: pip install -e .[review]")
pytest.importorskip("sklearn", reason="review needs: pip install -e .[review]")


def read_ranking(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_the_planted_flips_rank_first(flipped_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "suspects.csv"
    assert run_cli("review", str(flipped_run), "--csv", str(out), "--accelerator", "cpu") == 0
    said = capsys.readouterr().out
    assert "random weights" in said and "fine-tuned network" in said  # --no-pretrained: nothing else to start from
    rows = read_ranking(out)
    assert list(rows[0])[:6] == ["path", "label", "suggested", "probability", "score", "reason"]
    top = {row["path"]: row for row in rows[:2]}
    assert set(top) == set(FLIPPED)
    first = top[FLIPPED[0]]
    assert (first["label"], first["suggested"], first["suspect"]) == ("fox", "cat", "yes")
    assert float(first["probability"]) > 0.5 and "the model says cat" in first["reason"]
    scores = [float(row["score"]) for row in rows]
    assert scores == sorted(scores)
    with open(flipped_run / "splits.csv", newline="") as file:
        splits = list(csv.DictReader(file))
    assert {row["path"] for row in rows} == {row["path"] for row in splits if row["split"] != "test"}
    assert not any(row["path"].startswith("test/") for row in rows)  # test photos are never looked at


def test_the_starting_weights_give_the_features_when_there_are_some(flipped_run: Path, tmp_path: Path,
                                                                    capsys) -> None:
    """A run started from a --weights file is scored with those weights, which never saw a label."""
    import timm

    weights = tmp_path / "start.pth"
    torch.save(timm.create_model(TINY_MODEL, pretrained=False).state_dict(), weights)
    run = tmp_path / "run"
    shutil.copytree(flipped_run, run)
    settings = yaml.safe_load((run / "config.yaml").read_text())
    settings.update(weights=str(weights), pretrained=True)
    (run / "config.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "suspects.csv"
    assert run_cli("review", str(run), "--csv", str(out), "--accelerator", "cpu") == 0
    assert f"starting weights (file:{weights.resolve()})" in capsys.readouterr().out
    assert {row["path"] for row in read_ranking(out)[:2]} == set(FLIPPED)


def test_a_run_that_is_not_there_is_one_line(tmp_path: Path, capsys) -> None:
    assert run_cli("review", str(tmp_path), "--csv", str(tmp_path / "x.csv")) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "not a run folder" in error[0]
    assert run_cli("review") == 2
