"""report.md: a short, human summary of one run, written into the run folder after training.

    runs/<name>/report.md              numbers, confusion matrix, per-class table, worst mistakes, data,
                                       and what to try next
    runs/<name>/confusion_matrix.png   the validation confusion matrix of the best checkpoint
    runs/<name>/mistakes/*.jpg         thumbnails of the worst mistakes
    runs/<name>/lr_finder.png          the learning-rate finder's curve (only with --lr auto)

"What to try next" comes from the simple rules in ``what_to_try``; the thresholds are at the top of
this file, so you can tune them to your taste (uneven classes: the rule in dataset/balance.py).
``settings`` is the run's config as a dict (``Config.to_dict()``).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch
from PIL import Image

from {{ cookiecutter.package_name }}.dataset.balance import class_balance
from {{ cookiecutter.package_name }}.dataset.decode import PHOTO_FORMATS, load_rgb
from {{ cookiecutter.package_name }}.dataset.folders import DatasetSplits
from {{ cookiecutter.package_name }}.errors import shell_quote
from {{ cookiecutter.package_name }}.reporting.pictures import confusion_matrix_image
from {{ cookiecutter.package_name }}.reporting.scores import confusion_matrix, per_class_table
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder
from {{ cookiecutter.package_name }}.training.lr_finder import LrChoice
from {{ cookiecutter.package_name }}.training.writing import picture_bytes, write_atomically

WORST_MISTAKES = 8  # thumbnails in the report
THUMBNAIL = 128  # pixels
OVERFIT_GAP = 0.15  # train accuracy this much above val accuracy: memorising
UNDERFIT_ACC = 0.7  # train accuracy below this: not learnt enough yet
STILL_IMPROVING = 0.01  # val F1 rose at least this much in the last epoch: train longer
FEW_IMAGES = 20  # training photos per class below this: too few
SMALL_SHARE = 0.3  # this share of photos smaller than the input size: they get blown up
SIZE_SAMPLE = 200  # photos whose size is checked (reading headers only, so it is quick)
CONFIDENT_MISTAKE = 0.8  # a wrong answer this sure is often a photo in the wrong class folder: point at review


def write_report(run: RunFolder, settings: dict, metrics: dict, val_results: dict[str, torch.Tensor],
                 splits: DatasetSplits, history: list[dict], lr_choice: LrChoice | None = None) -> Path:
    """Write report.md (and its pictures) into the run folder; returns its path."""
    names = splits.classes
    matrix = confusion_matrix(val_results, len(names))
    picture = confusion_matrix_image(matrix, names, f"Confusion matrix, validation, best checkpoint ({run.path.name})")
    write_atomically(run.path / "confusion_matrix.png", picture_bytes(picture))
    train_counts = splits.train_counts()

    lines = [f"# Run report: {run.path.name}", ""]
    lines += headline(metrics, settings, lr_choice)
    lines += ["", "## What to try next", ""]
    share = small_image_share(splits, settings["image_size"])
    hints = what_to_try(metrics, history, names, train_counts, matrix, settings, share)
    if label_hint := review_hint(val_results, run):
        hints.insert(0, f"**Labels to check**: {label_hint}")
    lines += [f"- {hint}" for hint in hints]
    lines += [
        "", "## Confusion matrix", "",
        "Rows are the true classes, columns what the model predicted: the diagonal holds the right answers, "
        "every other number is a mistake (for example row *cat*, column *dog*: cats taken for dogs). "
        "The colour is the share of the row, so small classes show as clearly as big ones.",
        "", "![confusion matrix](confusion_matrix.png)",
        "", "## Per-class scores", "",
        per_class_table(val_results, names, train_counts),
    ]
    lines += ["", "## Worst mistakes", ""]
    lines += worst_mistakes(run, val_results, splits)
    lines += ["", "## Data", ""]
    lines += data_summary(splits, metrics)
    if lr_choice and lr_choice.plot:
        lines += ["", "## Learning-rate finder", "",
                  f"The finder tried rates from tiny to huge for a few batches; learning rate {lr_choice.lr:.2e} "
                  f"({lr_choice.how}).", "", f"![learning-rate finder]({lr_choice.plot.name})"]
    lines += ["", "---", f"Repeat this run with: `{{ cookiecutter.project_slug }} train --config {run.config}` "
              f"(TensorBoard: `tensorboard --logdir {shell_quote(run.path.parent)}`)", ""]
    path = run.path / "report.md"
    write_atomically(path, "\n".join(lines))
    return path


def headline(metrics: dict, settings: dict, lr_choice: LrChoice | None) -> list[str]:
    """The numbers first, then how they were obtained."""
    score = (f"**Validation accuracy {metrics['val_acc']:.1%}**, macro F1 {metrics['val_f1_macro']:.3f}, "
             f"loss {metrics['val_loss']:.3f} (best checkpoint)")
    if "test_acc" in metrics:
        score += f"; **test accuracy {metrics['test_acc']:.1%}**, macro F1 {metrics['test_f1_macro']:.3f}"
    lr = f"{settings['lr']:.2e}" if isinstance(settings["lr"], float) else str(settings["lr"])
    if lr_choice:
        lr += f" ({lr_choice.how})"
    speed = f", {metrics['train_images_per_s']:.0f} training images/s" if metrics.get("train_images_per_s") else ""
    return [
        score, "",
        "| | |", "| --- | --- |",
        f"| model | {metrics['backbone']}, weights: {metrics['pretrained']} |",
        f"| image size | {metrics['image_size']} px |",
        f"| epochs | {metrics['epochs']}, of which {settings['freeze_epochs']} trained only the new head |",
        f"| learning rate | {lr}, batch size {settings['batch_size']} |",
        f"| device | {metrics['device']}, precision {metrics['precision']} |",
        f"| time | {duration(metrics.get('seconds', 0))}{speed} |",
    ]


def duration(seconds: float) -> str:
    """85 -> '1 min 25 s'."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def what_to_try(metrics: dict, history: list[dict], names: list[str], train_counts: list[int],
                matrix: torch.Tensor, settings: dict, small_share: float) -> list[str]:
    """Concrete next steps from simple rules on this run; the most useful first."""
    epochs, image_size = settings["epochs"], settings["image_size"]
    hints = []
    last = history[-1] if history else {}
    train_acc, val_acc = last.get("train_acc"), last.get("val_acc")
    if train_acc is not None and val_acc is not None and train_acc - val_acc > OVERFIT_GAP:
        hints.append(
            f"**Overfitting**: the model is right on {train_acc:.0%} of its training photos but only {val_acc:.0%} "
            "of new ones, so it is memorising. Add more photos, or try fewer epochs "
            f"(`--epochs {max(1, epochs // 2)}`) or more weight decay "
            f"(`--weight-decay {settings['weight_decay'] * 5:g}`)."
        )
    elif train_acc is not None and train_acc < UNDERFIT_ACC:
        hint = (f"**Underfitting**: even on its training photos the model is right only {train_acc:.0%} of the "
                f"time. Try `--epochs {epochs * 2}`, a bigger backbone such as `--backbone convnext_tiny`, "
                "or `--lr auto`")
        hint += "; and start from pretrained weights (drop `--no-pretrained`)." if not settings["pretrained"] else "."
        hints.append(hint)
    f1s = [row["val_f1_macro"] for row in history if "val_f1_macro" in row]
    if len(f1s) >= 2 and f1s[-1] >= max(f1s) and f1s[-1] - f1s[-2] >= STILL_IMPROVING:
        hints.append(f"**Still improving**: validation F1 rose from {f1s[-2]:.3f} to {f1s[-1]:.3f} in the last epoch. "
                     f"Try `--epochs {epochs * 2}`.")
    mistakes = matrix.clone()
    mistakes.fill_diagonal_(0)
    if mistakes.sum() > 0:
        true, predicted = divmod(int(mistakes.argmax()), len(names))
        hints.append(
            f"**Most confused**: {int(mistakes[true, predicted])} of {int(matrix[true].sum())} validation photos of "
            f"*{names[true]}* were taken for *{names[predicted]}*. Look at them in the worst mistakes below, and add "
            f"photos of {names[true]} and {names[predicted]} that show what tells them apart."
        )
    few = [f"{name} ({count})" for name, count in zip(names, train_counts, strict=True) if count < FEW_IMAGES]
    if few:
        hints.append(f"**Too few photos**: add photos of {', '.join(few)}; each class has fewer than {FEW_IMAGES} "
                     "training photos. Aim for 50 or more per class.")
    balance = class_balance(names, train_counts)
    if balance.imbalanced:
        big, small = (train_counts[names.index(name)] for name in (balance.largest, balance.smallest))
        hints.append(
            f"**Unbalanced classes**: *{balance.largest}* has {big} training photos, "
            f"*{balance.smallest}* only {small}. The model learns to favour big classes: "
            f"add photos of {balance.smallest} (and the other small classes)."
        )
    if small_share >= SMALL_SHARE:
        hints.append(
            f"**Small photos**: {small_share:.0%} of the training photos are smaller than the model's input "
            f"({image_size} px), so they are blown up and blurry. Use larger photos, or a smaller "
            f"`--image-size` (e.g. `--image-size {max(32, image_size // 2)}`)."
        )
    if not hints:
        hints.append("Nothing obvious to fix. For a few more points try a bigger backbone such as "
                     "`--backbone convnext_tiny`, or more photos; or share this model with `predict` and `export`.")
    return hints


def review_hint(val_results: dict[str, torch.Tensor], run: RunFolder) -> str | None:
    """A sentence pointing at ``review`` when some validation mistakes are confident ones, else None.

    A model that is mostly right, and wrong and sure of it on a photo, is most often looking at a photo
    saved in the wrong class folder (or one that shows two classes): what ``review`` finds among all photos.
    """
    probabilities = val_results["probs"]
    wrong = probabilities.argmax(1) != val_results["targets"]
    if wrong.float().mean() > 0.5:  # a model mostly wrong is sure of many mistakes: the model is the problem
        return None
    count = int((wrong & (probabilities.max(1).values >= CONFIDENT_MISTAKE)).sum())
    if not count:
        return None
    return (f"{count} validation photo(s) were taken for another class with {CONFIDENT_MISTAKE:.0%} confidence or "
            "more, which is how a photo in the wrong class folder looks. `{{ cookiecutter.project_slug }} review "
            f"{shell_quote(run.path)}` ranks every training and validation photo by how likely its label is wrong, "
            "and lets you move or remove them.")


def small_image_share(splits: DatasetSplits, image_size: int) -> float:
    """Share of a fixed sample of training photos whose shorter side is below ``image_size``."""
    paths = [sample.path for sample in splits.train]
    paths = random.Random(0).sample(paths, min(SIZE_SAMPLE, len(paths)))
    small = 0
    for path in paths:
        try:
            with Image.open(path, formats=PHOTO_FORMATS) as image:  # reads the header only, not the pixels
                small += min(image.size) < image_size
        except OSError:
            continue
    return small / max(1, len(paths))


def worst_mistakes(run: RunFolder, val_results: dict[str, torch.Tensor], splits: DatasetSplits) -> list[str]:
    """Thumbnails of the wrong validation predictions the model was most sure about."""
    folder = run.path / "mistakes"
    shutil.rmtree(folder, ignore_errors=True)  # a resumed run rewrites them
    wrong = (val_results["probs"].argmax(1) != val_results["targets"]).nonzero().flatten()
    if len(wrong) == 0:
        return ["No mistakes on the validation photos."]
    folder.mkdir(parents=True, exist_ok=True)
    order = wrong[val_results["losses"][wrong].argsort(descending=True)][:WORST_MISTAKES].tolist()
    lines = ["The wrong answers the model was most sure about. Check that these photos are labelled correctly.", "",
             "| photo | file | true class | predicted | confidence |", "| --- | --- | --- | --- | ---: |"]
    names = splits.classes
    for rank, row in enumerate(order, start=1):
        sample = splits.val[int(val_results["indices"][row])]
        predicted = int(val_results["probs"][row].argmax())
        thumbnail = folder / f"{rank}.jpg"
        try:
            picture = load_rgb(sample.path, min_size=THUMBNAIL)
            picture.thumbnail((THUMBNAIL, THUMBNAIL))
        except OSError:
            cell = "(unreadable)"
        else:
            write_atomically(thumbnail, picture_bytes(picture, format="JPEG", quality=85))
            cell = f"![{sample.path.name}](mistakes/{thumbnail.name})"
        lines.append(f"| {cell} | {sample.path.relative_to(splits.root).as_posix()} | {names[sample.label]} | "
                     f"{names[predicted]} | {float(val_results['probs'][row, predicted]):.0%} |")
    return lines


def data_summary(splits: DatasetSplits, metrics: dict) -> list[str]:
    """Where the photos came from, how many, and what was skipped."""
    images = metrics["images"]
    made = " (made from train: see splits.csv)" if splits.val_was_made else ""
    lines = [
        f"- folder: `{splits.root}`",
        f"- {len(splits.classes)} classes: {', '.join(splits.classes)}",
        f"- photos: {images['train']} train, {images['val']} validation{made}, {images['test']} test",
    ]
    skipped = metrics.get("skipped") or {}
    if skipped:
        lines.append("- skipped files: " + ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items())))
    else:
        lines.append("- skipped files: none")
    if splits.empty_classes:
        lines.append(f"- empty class folders (ignored): {', '.join(splits.empty_classes)}")
    return lines
