"""report.md: a run explains itself, with its pictures next to it and concrete next steps."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch
from PIL import Image

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.reporting.report import duration, review_hint, what_to_try
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder

from ..conftest import run_cli


def linked_images(report: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text(encoding="utf-8"))


def test_report_has_the_numbers_the_confusion_matrix_and_the_mistakes(trained_run: Path) -> None:
    """report.md names the confusion matrix, and every picture it links to exists and opens."""
    report = trained_run / "report.md"
    text = report.read_text(encoding="utf-8")
    assert "**Validation accuracy" in text and "## Confusion matrix" in text and "## What to try next" in text
    assert "## Per-class scores" in text and all(f"| {name} |" in text for name in ("cat", "dog", "fox"))
    assert "## Data" in text and "skipped files" in text and "device | cpu, precision 32" in text
    images = linked_images(report)
    assert "confusion_matrix.png" in images
    for name in images:
        with Image.open(trained_run / name) as picture:
            picture.load()  # a real, complete image file
    mistakes = sorted(p.name for p in (trained_run / "mistakes").glob("*.jpg")) if "mistakes/" in text else []
    assert len(mistakes) <= 8 and all(f"mistakes/{name}" in images for name in mistakes)


def test_report_is_rewritten_on_resume(trained_run: Path, tmp_path: Path) -> None:
    """Resuming a finished run writes report.md again (stale mistake thumbnails are removed)."""
    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    (run / "report.md").unlink()
    (run / "mistakes").mkdir(exist_ok=True)
    (run / "mistakes" / "99.jpg").write_bytes(b"stale")
    assert run_cli("train", "--resume", str(run)) == 0
    assert "## Confusion matrix" in (run / "report.md").read_text(encoding="utf-8")
    assert not (run / "mistakes" / "99.jpg").exists()


def hints_for(history: list[dict], train_counts: list[int], matrix: torch.Tensor, small_share: float = 0.0,
              **config) -> str:
    metrics = {"val_acc": history[-1]["val_acc"]}
    names = ["cat", "dog", "fox"]
    settings = Config(**config).to_dict()
    return "\n".join(what_to_try(metrics, history, names, train_counts, matrix, settings, small_share))


GOOD = torch.tensor([[20, 0, 0], [0, 20, 0], [0, 0, 20]])


def test_overfitting_and_underfitting_give_concrete_advice() -> None:
    overfit = hints_for([{"train_acc": 0.99, "val_acc": 0.7, "val_f1_macro": 0.7}], [60, 60, 60], GOOD, epochs=20)
    assert "Overfitting" in overfit and "--epochs 10" in overfit
    underfit = hints_for([{"train_acc": 0.4, "val_acc": 0.38, "val_f1_macro": 0.3}], [60, 60, 60], GOOD,
                         pretrained=False)
    assert "Underfitting" in underfit and "convnext_tiny" in underfit and "--no-pretrained" in underfit


def test_still_improving_suggests_more_epochs() -> None:
    history = [{"train_acc": 0.9, "val_acc": 0.85, "val_f1_macro": 0.80},
               {"train_acc": 0.92, "val_acc": 0.9, "val_f1_macro": 0.88}]
    assert "Still improving" in hints_for(history, [60, 60, 60], GOOD, epochs=5) and "--epochs 10" in hints_for(
        history, [60, 60, 60], GOOD, epochs=5)
    flat = [{"val_f1_macro": 0.88, "train_acc": 0.9, "val_acc": 0.9}] * 2
    assert "Still improving" not in hints_for(flat, [60, 60, 60], GOOD)


def test_data_problems_name_the_classes() -> None:
    confused = torch.tensor([[10, 9, 1], [0, 20, 0], [0, 0, 20]])
    text = hints_for([{"train_acc": 0.9, "val_acc": 0.85, "val_f1_macro": 0.85}], [200, 60, 12], confused,
                     small_share=0.5, image_size=224)
    assert "9 of 20 validation photos of *cat* were taken for *dog*" in text
    assert "add photos of fox (12)" in text  # too few
    assert "Unbalanced" in text and "*fox* only 12" in text
    assert "Small photos" in text and "224 px" in text


def test_a_clean_run_still_gets_a_next_step() -> None:
    text = hints_for([{"train_acc": 0.97, "val_acc": 0.96, "val_f1_macro": 0.96}] * 2, [60, 60, 60], GOOD)
    assert text.startswith("Nothing obvious to fix") and "convnext_tiny" in text


def test_duration_reads_like_a_person_would_say_it() -> None:
    assert [duration(s) for s in (9, 85, 3725)] == ["9 s", "1 min 25 s", "1 h 2 min"]


def test_confident_validation_mistakes_point_at_review() -> None:
    """Wrong and at least 80% sure, by a model mostly right: the look of a photo in the wrong class folder."""
    targets = torch.tensor([0, 1, 1, 0])
    unsure = {"probs": torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]), "targets": targets}
    assert review_hint(unsure, RunFolder(Path("runs/r1"))) is None  # the one mistake is a 60% guess
    sure = {"probs": torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05], [0.7, 0.3]]), "targets": targets}
    hint = review_hint(sure, RunFolder(Path("runs/r1")))
    assert hint.startswith("1 validation photo(s)") and f"review {Path('runs/r1')}" in hint
    # A run folder whose name a shell would misread is quoted, so the printed command can be pasted.
    odd = Path("runs/my [cats]")
    assert f'review "{odd}"' in review_hint(sure, RunFolder(odd))


def test_a_model_mostly_wrong_is_not_sent_to_review() -> None:
    """Sure and wrong on most photos is a model that has not learnt yet, not a folder of wrong labels."""
    targets = torch.tensor([0, 1, 1, 0])
    guessing = {"probs": torch.tensor([[0.1, 0.9], [0.9, 0.1], [0.95, 0.05], [0.7, 0.3]]), "targets": targets}
    assert review_hint(guessing, RunFolder(Path("runs/r1"))) is None
