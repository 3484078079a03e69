"""benchmarks/recipe.py judges cells as its docstring says, on datasets built as benchmarks/README.md lists."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tools")]

import recipe  # noqa: E402
from sample_data import RECIPE_DATASETS  # noqa: E402


def runs(template: list[float], fastai: list[float], seconds: tuple[float, float] = (30, 60)) -> list[dict]:
    return [
        {
            "dataset": "d",
            "size": 64,
            "seed": seed,
            "template": {"val_acc": t, "seconds": seconds[0]},
            "fastai": {"val_acc": f, "seconds": seconds[1]},
        }
        for seed, (t, f) in enumerate(zip(template, fastai, strict=True))
    ]


@pytest.mark.parametrize(
    ("template", "fastai", "seconds", "wins"),
    [
        ([0.90, 0.92], [0.88, 0.89], (30, 60), True),  # +0.025 mean, worst 0.90 >= 0.88, 0.5x the time
        ([0.90, 0.90], [0.895, 0.895], (30, 60), False),  # mean only +0.005
        ([1.00, 0.85], [0.90, 0.90], (30, 60), False),  # mean +0.025, but a worse worst run
        ([0.95, 0.95], [0.90, 0.90], (50, 60), False),  # more accurate, but 0.83x fastai's time
    ],
)
def test_a_cell_is_won_on_mean_worst_and_wall_time(template, fastai, seconds, wins) -> None:
    (row,) = recipe.summarise(runs(template, fastai, seconds))
    assert row["wins"] is wins
    assert row["template"]["worst"] == min(template) and row["fastai"]["mean"] == pytest.approx(np.mean(fastai))
    assert "| d | 64 | 2 |" in recipe.markdown([row])


# (classes, train images, val images) as benchmarks/README.md's dataset table gives them.
SHAPES = {
    "digits": (10, 400, 150),
    "uneven-digits": (5, 236, 60),
    "textures": (3, 120, 60),
    "faces": (2, 160, 40),
    "photo-crops": (16, 128, 80),
}


@pytest.mark.parametrize("name", sorted(RECIPE_DATASETS))
def test_each_dataset_has_its_listed_shape_and_no_val_image_in_train(name: str, tmp_path: Path) -> None:
    RECIPE_DATASETS[name](tmp_path, recipe.SOURCE_SIZE[name], seed=1)
    classes, train, val = SHAPES[name]
    train_files = sorted((tmp_path / "train").glob("*/*.png"))
    val_files = sorted((tmp_path / "val").glob("*/*.png"))
    assert (len({f.parent.name for f in train_files}), len(train_files), len(val_files)) == (classes, train, val)
    assert {f.parent.name for f in val_files} == {f.parent.name for f in train_files}
    with Image.open(train_files[0]) as first:
        assert first.size == (recipe.SOURCE_SIZE[name],) * 2
    seen = {np.asarray(Image.open(f)).tobytes() for f in train_files}
    assert not any(np.asarray(Image.open(f)).tobytes() in seen for f in val_files)


# The generated README's table, row label -> dataset: its figures are the committed matrix's means.
README_ROWS = {
    "handwritten digits": "digits",
    "digits, uneven (8:1)": "uneven-digits",
    "small texture patches": "textures",
    "grey faces or not": "faces",
    "which photo a crop is from": "photo-crops",
}


def committed() -> dict:
    """benchmarks/recipe.json: the latest run of every cell with the default recipe."""
    return json.loads((ROOT / "benchmarks" / "recipe.json").read_text(encoding="utf-8"))


def test_the_committed_summary_is_the_summary_of_its_runs_and_names_no_machine_path() -> None:
    results = committed()
    assert results["summary"] == recipe.summarise(results["runs"])
    assert all(cell["wins"] for cell in results["summary"])
    text = (ROOT / "benchmarks" / "recipe.json").read_text(encoding="utf-8")
    assert '"/' not in text and ":\\\\" not in text  # no absolute path of the machine it ran on


def test_the_generated_readme_quotes_the_committed_matrix() -> None:
    # The generated README quotes the first three seeds (0-2) of every 64 and 128 px cell.
    first = [r for r in committed()["runs"] if r["seed"] <= 2 and r["size"] in (64, 128)]
    summary = recipe.summarise(first)
    means = {(c["dataset"], c["size"]): (c["template"]["mean"], c["fastai"]["mean"]) for c in summary}
    assert len(means) == 10 and all(c["wins"] and c["seeds"] == 3 for c in summary)
    readme = (ROOT / "{{cookiecutter.project_slug}}" / "README.md").read_text(encoding="utf-8")
    rows = {
        cells[0]: cells[3:5]
        for line in readme.splitlines()
        if (cells := [c.strip() for c in line.strip("|").split("|")])[0] in README_ROWS
    }
    assert rows.keys() == README_ROWS.keys()
    for label, dataset in README_ROWS.items():
        for size, quoted in zip((64, 128), rows[label], strict=True):
            assert quoted == "{:.2f} / {:.2f}".format(*means[(dataset, size)]), (label, size)


def test_the_generated_readme_quotes_the_committed_224_px_and_5_seed_cells() -> None:
    summary = committed()["summary"]
    cells = {c["dataset"]: c for c in summary if c["size"] == 224}
    assert (cells["textures"]["wins"], cells["photo-crops"]["wins"]) == (True, True)
    assert cells["photo-crops"]["seeds"] == 5
    readme = " ".join((ROOT / "{{cookiecutter.project_slug}}" / "README.md").read_text(encoding="utf-8").split())
    textures, crops = (
        "{:.2f} / {:.2f}".format(cells[name]["template"]["mean"], cells[name]["fastai"]["mean"])
        for name in ("textures", "photo-crops")
    )
    assert f"won the texture patches ({textures}) and the photo crops ({crops}, 5 seeds)" in readme
    five = {c["size"]: c for c in summary if c["dataset"] == "photo-crops"}
    assert sorted(five) == [64, 128, 224] and all(c["wins"] and c["seeds"] == 5 for c in five.values())
    quoted = ", ".join(
        f"{size} px " + "{:.2f} / {:.2f}".format(five[size]["template"]["mean"], five[size]["fastai"]["mean"])
        for size in (64, 128)
    )
    assert f"photo crops over 5 seeds at every size ({quoted})" in readme


def test_a_new_run_replaces_its_cells_earlier_run_and_keeps_the_other_tools(tmp_path: Path) -> None:
    earlier = runs([0.5, 0.6], [0.4, 0.45])
    new = [{"dataset": "d", "size": 64, "seed": 1, "template": {"val_acc": 0.9, "seconds": 20}},
           {"dataset": "d", "size": 128, "seed": 0, "template": {"val_acc": 0.7, "seconds": 40}}]
    merged = recipe.merge(earlier, new)
    cells = {(r["size"], r["seed"]): r for r in merged}
    assert len(merged) == 3
    assert cells[(64, 0)] == earlier[0]  # not run again: as it was
    assert cells[(64, 1)]["template"]["val_acc"] == 0.9 and cells[(64, 1)]["fastai"] == earlier[1]["fastai"]
    assert "fastai" not in cells[(128, 0)]
    # A file of other settings is refused before anything runs.
    path = tmp_path / "recipe.json"
    settings = {"backbone": "b", "epochs": 5, "batch_size": 32, "template_args": "", "accelerator": "cpu"}
    path.write_text(json.dumps({"settings": settings, "runs": earlier}))
    recipe.check_same_settings(path, settings)
    with pytest.raises(SystemExit, match="--drop-path 0.1"):
        recipe.check_same_settings(path, {**settings, "template_args": "--drop-path 0.1"})


def test_fastai_from_pairs_each_new_template_run_with_the_same_cells_earlier_fastai_run(tmp_path: Path) -> None:
    earlier = runs([0.1, 0.2], [0.5, 0.6])
    (tmp_path / "earlier.json").write_text(json.dumps({"runs": earlier}))
    new = [{k: v for k, v in run.items() if k != "fastai"} for run in runs([0.9, 0.8], [0, 0])][::-1]
    merged = recipe.with_fastai_from(tmp_path / "earlier.json", new)
    pairs = [(r["seed"], r["template"]["val_acc"], r["fastai"]["val_acc"]) for r in merged]
    assert pairs == [(1, 0.8, 0.6), (0, 0.9, 0.5)]
    with pytest.raises(KeyError):  # a cell the earlier file does not have is not silently left out
        recipe.with_fastai_from(tmp_path / "earlier.json", [{**new[0], "seed": 7}])
