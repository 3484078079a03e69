"""TensorBoard shows what the model sees, where it is wrong, the per-class scores and the run's settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from {{ cookiecutter.package_name }}.reporting.dashboard import spread_indices
from {{ cookiecutter.package_name }}.reporting.pictures import RIGHT, WRONG, captioned_grid, confusion_matrix_image
from {{ cookiecutter.package_name }}.reporting.scores import confusion_matrix, per_class_table

IMAGES = {"train/batch_preview", "val/confusion_matrix", "val/predictions", "val/worst_predictions"}


def read_events(run: Path) -> EventAccumulator:
    return EventAccumulator(str(run), size_guidance={"images": 0, "tensors": 0, "scalars": 0}).Reload()


def test_event_files_hold_the_pictures(trained_run: Path) -> None:
    """Batch preview, confusion matrix, prediction grid and worst predictions are logged as images."""
    events = read_events(trained_run)
    assert IMAGES <= set(events.Tags()["images"])
    assert len(events.Images("train/batch_preview")) == 1  # once, at the start
    # The last epoch is always drawn, and never more than once per epoch.
    matrices = events.Images("val/confusion_matrix")
    assert 1 <= len(matrices) <= 2 and matrices[-1].step >= max(e.step for e in events.Scalars("val/acc"))
    assert matrices[-1].width > 3 * 48 and matrices[-1].height > 3 * 48  # three classes, big cells


def test_event_files_hold_the_per_class_table_and_hparams(trained_run: Path) -> None:
    """The per-class table is markdown text naming every class; HParams has the config and final scores."""
    events = read_events(trained_run)
    assert "val/per_class_scores/text_summary" in events.Tags()["tensors"]
    table = events.Tensors("val/per_class_scores/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "| class | precision | recall | F1 |" in table
    assert all(f"| {name} |" in table for name in ("cat", "dog", "fox"))

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["backbone"].string_value == "test_efficientnet"
    assert start.hparams["epochs"].number_value == 2
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    scores = {"val_best/acc", "val_best/f1_macro", "val_best/loss"}
    assert scores <= {m.name.tag for m in experiment.metric_infos}
    # HParams reads each score from the scalar of that name; one point each, at the end.
    scalars = set(events.Tags()["scalars"])
    assert scores | {"weights_learning_rate/head", "weights_learning_rate/backbone_1"} <= scalars
    assert all(len(events.Scalars(tag)) == 1 for tag in scores)
    # Time Series sorts groups by name: the train/ and val/ curves open the page, everything else after.
    groups = sorted({tag.split("/")[0] for tag in scalars})
    assert groups[:2] == ["train", "val"], groups
    summary = events.Tensors("val_best/scores/text_summary")[-1].tensor_proto.string_val[0].decode()
    accuracy = next(s.value for s in events.Scalars("val_best/acc"))
    assert f"| val accuracy | {accuracy:.1%} |" in summary and "| val loss |" in summary


def test_confusion_matrix_stays_readable_with_37_classes() -> None:
    """Each of 37 classes gets a cell big enough for its count; right answers are dark, empty cells pale."""
    names = [f"american_pit_bull_terrier_{i:02d}" for i in range(37)]
    targets = torch.arange(37).repeat_interleave(3)
    wrong = (torch.arange(len(targets)) % 3 == 0).long()  # the first photo of every class
    probs = torch.nn.functional.one_hot((targets + wrong) % 37, 37).float()
    matrix = confusion_matrix({"probs": probs, "targets": targets}, 37)
    assert matrix.sum() == len(targets) and matrix.trace() == 2 * 37  # one of three photos per class wrong
    picture = np.asarray(confusion_matrix_image(matrix, names, "test"))
    height, width, _ = picture.shape
    assert height >= 37 * 24 and width >= 37 * 24
    # Locate the grid by its pale top-left cell (row 0 predicted as class 0 twice: dark) -> sample cells.
    left = width - 110 - 37 * 24
    top = 60
    diagonal = picture[top + 5 * 24 + 2, left + 5 * 24 + 2]  # 2 of 3 right: dark blue
    empty = picture[top + 5 * 24 + 2, left + 20 * 24 + 2]  # never predicted: almost white
    assert diagonal.sum() < 400 and empty.sum() > 700


def test_prediction_tiles_are_framed_green_when_right_and_red_when_wrong() -> None:
    images = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    grid = captioned_grid(images, [["true: cat", "predicted: cat"], ["true: dog", "predicted: cat"]], [RIGHT, WRONG])
    pixels = grid.permute(1, 2, 0).numpy()
    padding = 6  # make_grid's border around every tile
    assert tuple(pixels[padding + 1, padding + 1]) == RIGHT
    right_tile_x = padding + (grid.shape[2] - padding) // 2 + 1
    assert tuple(pixels[padding + 1, right_tile_x]) == WRONG
    assert np.all(pixels[padding + 40, padding + 40] == 128)  # the photo itself is untouched inside the frame


def test_per_class_table_puts_the_worst_class_first() -> None:
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 0, 1, 1, 1, 1])  # class c is never found
    probs = torch.nn.functional.one_hot(predicted, 3).float()
    rows = [line for line in per_class_table({"probs": probs, "targets": targets}, ["a", "b", "c"]).splitlines()
            if line.startswith("| ") and not line.startswith(("| class", "| ---"))]
    assert rows[0].startswith("| c | 0.00 | 0.00 | 0.00 | 2 |")
    assert rows[-1].startswith("| a | 1.00 | 1.00 | 1.00 | 2 |")


def test_the_prediction_sample_is_fixed_and_spread_over_the_classes() -> None:
    assert spread_indices(100, 5) == [0, 25, 50, 74, 99]
    assert spread_indices(3, 16) == [0, 1, 2]
