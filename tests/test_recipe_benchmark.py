"""benchmarks/recipe.py judges cells as its docstring says, on datasets built as benchmarks/README.md lists."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

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


def test_the_generated_readme_quotes_the_committed_matrix() -> None:
    root = Path(__file__).resolve().parents[1]
    summary = json.loads((root / "benchmarks" / "recipe-2026-12-03-batchnorm-average.json").read_text())["summary"]
    means = {(c["dataset"], c["size"]): (c["template"]["mean"], c["fastai"]["mean"]) for c in summary}
    assert len(means) == 10 and all(c["wins"] for c in summary)
    readme = (root / "{{cookiecutter.project_slug}}" / "README.md").read_text(encoding="utf-8")
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
    root = Path(__file__).resolve().parents[1]
    summary = json.loads((root / "benchmarks" / "recipe-2026-12-03-batchnorm-average-224.json").read_text())["summary"]
    cells = {c["dataset"]: c for c in summary}
    assert (cells["textures"]["wins"], cells["photo-crops"]["wins"]) == (True, True)
    assert cells["photo-crops"]["seeds"] == 5
    readme = " ".join((root / "{{cookiecutter.project_slug}}" / "README.md").read_text(encoding="utf-8").split())
    textures, crops = (
        "{:.2f} / {:.2f}".format(cells[name]["template"]["mean"], cells[name]["fastai"]["mean"])
        for name in ("textures", "photo-crops")
    )
    assert f"won the texture patches ({textures}) and the photo crops ({crops}, 5 seeds)" in readme
    name = "recipe-2026-12-03-photo-crops-5-seeds-batchnorm-average.json"
    five = {c["size"]: c for c in json.loads((root / "benchmarks" / name).read_text())["summary"]}
    assert sorted(five) == [64, 128, 224] and all(c["wins"] and c["seeds"] == 5 for c in five.values())
    quoted = ", ".join(
        f"{size} px " + "{:.2f} / {:.2f}".format(five[size]["template"]["mean"], five[size]["fastai"]["mean"])
        for size in (64, 128)
    )
    assert f"photo crops over 5 seeds at every size ({quoted})" in readme


def test_fastai_from_pairs_each_new_template_run_with_the_same_cells_earlier_fastai_run(tmp_path: Path) -> None:
    earlier = runs([0.1, 0.2], [0.5, 0.6])
    (tmp_path / "earlier.json").write_text(json.dumps({"runs": earlier}))
    new = [{k: v for k, v in run.items() if k != "fastai"} for run in runs([0.9, 0.8], [0, 0])][::-1]
    merged = recipe.with_fastai_from(tmp_path / "earlier.json", new)
    pairs = [(r["seed"], r["template"]["val_acc"], r["fastai"]["val_acc"]) for r in merged]
    assert pairs == [(1, 0.8, 0.6), (0, 0.9, 0.5)]
    with pytest.raises(KeyError):  # a cell the earlier file does not have is not silently left out
        recipe.with_fastai_from(tmp_path / "earlier.json", [{**new[0], "seed": 7}])
