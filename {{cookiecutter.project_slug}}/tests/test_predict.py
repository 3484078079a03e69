"""predict: a run folder or checkpoint in, a table and a CSV out, bad input refused in one line."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.data import build_transforms
from {{ cookiecutter.package_name }}.dataset.decode import decode_size
from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
from {{ cookiecutter.package_name }}.dataset.image_dataset import ImageDataset
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.predict import load_classifier, predict

from .conftest import CLASSES, FAST, run_cli


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_predicts_a_folder_to_csv_with_the_spec_columns(trained_run: Path, image_folder: Path, tmp_path: Path):
    """One row per image: path, label, probability, then the other top-k, best first."""
    out = tmp_path / "predictions.csv"
    assert run_cli("predict", str(trained_run), str(image_folder / "train" / "cat"), "--top-k", "3",
                   "--csv", str(out)) == 0
    rows = read_csv(out)
    assert len(rows) == len(list((image_folder / "train" / "cat").iterdir()))
    assert list(rows[0]) == ["path", "label", "probability", "label_2", "probability_2", "label_3", "probability_3"]
    for row in rows:
        assert {row["label"], row["label_2"], row["label_3"]} == set(CLASSES)
        probabilities = [float(row["probability"]), float(row["probability_2"]), float(row["probability_3"])]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)


def test_predict_sees_images_exactly_as_validation_did(trained_run: Path, image_folder: Path):
    """The tensor predict builds equals the validation dataset's, pixel for pixel."""
    classifier = load_classifier(trained_run, accelerator="cpu")
    splits = find_dataset(image_folder)
    config = classifier.data_config
    val = ImageDataset(splits.val, build_transforms(config, training=False), decode_size(config))
    for index, sample in enumerate(splits.val[:6]):
        assert torch.equal(classifier.load_image(sample.path), val[index][0])


def test_threshold_marks_unsure_predictions_and_keeps_the_guess(trained_run: Path, image_folder: Path,
                                                                 tmp_path: Path, capsys):
    """A label whose top-1 probability is below --threshold reads 'unsure'; the guess stays in best_guess."""
    out = tmp_path / "unsure.csv"
    folder = image_folder / "train" / "dog"
    # The threshold sits between the images' top-1 probabilities, so some images are sure and some not.
    probabilities = sorted(p.probabilities[0] for p in predict(str(trained_run), [str(folder)]))
    assert probabilities[0] < probabilities[-1], "the test needs images of different certainty"
    threshold = (probabilities[0] + probabilities[-1]) / 2
    capsys.readouterr()  # forget the first table
    predictions = predict(str(trained_run), [str(folder)], threshold=threshold, csv_path=str(out))
    rows = {row["path"]: row for row in read_csv(out)}
    for prediction in predictions:
        row = rows[str(prediction.path)]
        assert row["label"] == ("unsure" if prediction.probabilities[0] < threshold else prediction.labels[0])
        assert row["best_guess"] == prediction.labels[0]
    labels = {row["label"] for row in rows.values()}
    assert "unsure" in labels and len(labels) >= 2  # the least certain image is unsure, the most certain is not
    assert "unsure" in capsys.readouterr().out


def test_a_text_file_named_jpg_is_refused_in_one_line(trained_run: Path, tmp_path: Path, capsys):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a picture")
    assert run_cli("predict", str(trained_run), str(fake)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holiday.jpg" in err and "Traceback" not in err


def test_an_iphone_heic_photo_is_predicted_like_any_photo(trained_run: Path, image_folder: Path, tmp_path: Path):
    from .bad_uploads import heic_photo

    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes(heic_photo())
    out = tmp_path / "heic.csv"
    assert run_cli("predict", str(trained_run), str(tmp_path), "--csv", str(out)) == 0
    rows = read_csv(out)
    assert [row["path"] for row in rows] == [str(photo)] and rows[0]["label"] in CLASSES


def test_a_bad_file_among_good_ones_is_reported_and_skipped(trained_run: Path, image_folder: Path,
                                                           tmp_path: Path, capsys):
    good = image_folder / "train" / "fox" / "fox_001.png"
    bad = tmp_path / "broken.png"
    bad.write_bytes(good.read_bytes()[:40])  # cut off after the header, like a failed download
    out = tmp_path / "mixed.csv"
    assert run_cli("predict", str(trained_run), str(good), str(bad), "--csv", str(out)) == 0
    assert [row["path"] for row in read_csv(out)] == [str(good)]
    assert "broken.png" in capsys.readouterr().out


def test_top_k_larger_than_the_classes_shows_every_class(trained_run: Path, image_folder: Path, tmp_path: Path):
    out = tmp_path / "k.csv"
    assert run_cli("predict", str(trained_run / "checkpoints" / "best.ckpt"),
                   str(image_folder / "train" / "cat" / "cat_000.jpg"), "--top-k", "10", "--csv", str(out)) == 0
    assert len(read_csv(out)[0]) == 1 + 2 * len(CLASSES)


def copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def test_a_checkpoint_of_another_project_is_refused(trained_run: Path, tmp_path: Path):
    run = copy_run(trained_run, tmp_path)
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["project"] = "someone_elses_classifier"
    torch.save(checkpoint, run / "checkpoints" / "best.ckpt")
    with pytest.raises(UserError, match="another project"):
        load_classifier(run)


def test_a_checkpoint_with_other_classes_than_its_run_is_refused(trained_run: Path, tmp_path: Path):
    run = copy_run(trained_run, tmp_path)
    (run / "labels.json").write_text(json.dumps(["apple", "banana", "cherry"]))
    with pytest.raises(UserError, match="does not belong to this run"):
        load_classifier(run)


def test_a_plain_weights_file_is_not_taken_for_a_checkpoint(tmp_path: Path):
    weights = tmp_path / "resnet.ckpt"
    torch.save({"conv1.weight": torch.zeros(2, 3)}, weights)
    with pytest.raises(UserError, match="not written by this project"):
        load_classifier(weights)


class Payload:
    """An arbitrary Python object: a pickle that could run code when loaded."""


def test_a_checkpoint_that_would_run_code_is_not_loaded(tmp_path: Path):
    """weights_only=True refuses pickled objects instead of executing them."""
    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": Payload(), "state_dict": {}}, evil)
    with pytest.raises(UserError, match="cannot be read"):
        load_classifier(evil)


def test_a_wrong_model_path_says_what_to_pass(image_folder: Path, tmp_path: Path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    for target in (tmp_path / "no" / "such" / "run", notes):
        assert run_cli("predict", str(target), str(image_folder)) == 1
        assert "run folder" in capsys.readouterr().err


def test_a_folder_without_images_is_an_error(trained_run: Path, tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert run_cli("predict", str(trained_run), str(tmp_path)) == 1
    assert "notes.txt" in capsys.readouterr().err


def test_a_vision_transformer_trained_at_another_size_predicts(image_folder: Path, tmp_path: Path):
    """A ViT trained at 32 px (not its native size) is rebuilt at 32 px by predict, not refused."""
    fast_vit = [a if a != "test_efficientnet" else "test_vit" for a in FAST]
    assert run_cli("train", "--data", str(image_folder), *fast_vit, "--epochs", "1", "--freeze-epochs", "0",
                   "--output", str(tmp_path), "--name", "vit") == 0
    out = tmp_path / "predictions.csv"
    assert run_cli("predict", str(tmp_path / "vit"), str(image_folder / "train" / "dog"), "--csv", str(out)) == 0
    assert len(read_csv(out)) == len(list((image_folder / "train" / "dog").iterdir()))
