"""A dataset with one photo in the wrong folder, and a real tiny run trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import FAST, draw_image, make_image_folder, run_cli

# A cat photo (red, see COLOURS in tests/conftest.py) saved in fox/, and a fox photo (blue) in cat/.
FLIPPED = ("train/fox/odd.png", "train/cat/odd.png")


@pytest.fixture(scope="session")
def flipped_data(tmp_path_factory) -> Path:
    """cat and fox, 12 training and 4 test photos each, and a photo of each in the other's folder."""
    root = make_image_folder(tmp_path_factory.mktemp("flipped") / "pets", per_class=12, classes=("cat", "fox"))
    make_image_folder(root, per_class=4, classes=("cat", "fox"), splits=("test",))
    draw_image(root / FLIPPED[0], "cat", seed="planted cat")
    draw_image(root / FLIPPED[1], "fox", seed="planted fox")
    return root


@pytest.fixture(scope="session")
def flipped_run(flipped_data: Path, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("runs")
    assert run_cli("train", "--data", str(flipped_data), *FAST, "--output", str(output), "--name", "flipped") == 0
    return output / "flipped"
