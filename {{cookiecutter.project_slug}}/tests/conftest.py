"""Shared test fixtures: a tiny image folder on disk and a way to run the CLI in-process.

Everything runs offline on the CPU in seconds: the images are drawn here, the model is timm's
100k-parameter ``test_efficientnet`` without pretrained weights.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import Config

ROOT = Path(__file__).parents[1]
TINY_MODEL = "test_efficientnet"
CLASSES = ("cat", "dog", "fox")
COLOURS = {"cat": (200, 60, 40), "dog": (40, 160, 60), "fox": (50, 70, 200)}

# Flags that make a training run take a few seconds: tiny model, tiny images, no workers.
FAST = ["--backbone", TINY_MODEL, "--no-pretrained", "--image-size", "32", "--batch-size", "8",
        "--epochs", "2", "--freeze-epochs", "1", "--num-workers", "0", "--accelerator", "cpu"]


def draw_image(path: Path, label: str, seed: int, size: int = 40) -> None:
    """A real image file whose dominant colour and shape depend on the class (learnable)."""
    rng = random.Random(seed)
    colour = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in COLOURS[label])
    image = Image.new("RGB", (size, size), tuple(rng.randint(0, 60) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    x, y = rng.randint(0, size // 3), rng.randint(0, size // 3)
    draw.ellipse([x, y, x + size // 2, y + size // 2], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_image_folder(root: Path, per_class: int = 12, classes=CLASSES, splits=("train",)) -> Path:
    """root/<split>/<class>/NNN.png (or .jpg for every third image), like a user's dataset."""
    for split in splits:
        for label in classes:
            for i in range(per_class):
                extension = ".jpg" if i % 3 == 0 else ".png"
                draw_image(root / split / label / f"{label}_{i:03d}{extension}", label, seed=f"{split}/{label}/{i}")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """3 classes x 12 training images, no val/ (so the split is made)."""
    return make_image_folder(tmp_path_factory.mktemp("data") / "pets")


@pytest.fixture(scope="session")
def trained_run(image_folder: Path, tmp_path_factory) -> Path:
    """One real 2-epoch training run through the CLI, shared by the tests that need a run folder."""
    output = tmp_path_factory.mktemp("runs")
    exit_code = run_cli("train", "--data", str(image_folder), *FAST, "--output", str(output), "--name", "shared")
    assert exit_code == 0
    return output / "shared"


def run_cli(*args: str) -> int:
    """Run the command line in this process; returns its exit code."""
    try:
        main(list(args))
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def tiny_classifier(classes=("a", "b", "c"), class_weights=None, image_size: int = 32, **settings):
    """A Classifier of the tiny test model, without pretrained weights; ``settings`` override Config's."""
    from {{ cookiecutter.package_name }}.model import Classifier

    cfg = Config(backbone=TINY_MODEL, image_size=image_size, pretrained=False, **settings)
    return Classifier(cfg.to_dict(), list(classes), class_weights=class_weights)


def package_layout() -> list[str]:
    """The package's files as the README's "Project layout" lists them, in its order: "config.py",
    "model/", "model/classifier.py", ... (no __init__.py). It is the project's one list of its files:
    test_readme.py checks it against the disk and test_imports.py takes the recipe from it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layout.*?-->\n```\n(.*?)```\n<!-- /layout -->", readme, re.S).group(1)
    entries, folder = [], ""
    for line in block.splitlines():
        if match := re.match(r"^  (\w+/) ", line):
            folder = match.group(1)
            entries.append(folder)
        elif match := re.match(r"^  (\w+\.py) ", line):
            folder = ""
            entries.append(match.group(1))
        elif match := re.match(r"^    (\w+\.py) ", line):
            entries.append(folder + match.group(1))
    return entries
