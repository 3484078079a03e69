"""The run's scores per class, computed once from the validation predictions and written the same way
for TensorBoard (``val/per_class_scores``) and report.md.
"""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_precision, multiclass_recall

PER_CLASS_EXPLAINED = (
    "Precision: of the photos predicted as this class, the share that really are. Recall: of the photos "
    "of this class, the share the model found. F1 combines both. Worst classes first."
)


def confusion_matrix(results: dict[str, torch.Tensor], num_classes: int) -> torch.Tensor:
    """Counts: row = true class, column = predicted class."""
    metric = MulticlassConfusionMatrix(num_classes)
    return metric(results["probs"], results["targets"]).long()


def per_class_scores(results: dict[str, torch.Tensor], num_classes: int) -> dict[str, list[float]]:
    """Precision, recall, F1 and support (number of validation photos) of every class."""
    probs, targets = results["probs"], results["targets"]
    return {
        "precision": multiclass_precision(probs, targets, num_classes, average=None).tolist(),
        "recall": multiclass_recall(probs, targets, num_classes, average=None).tolist(),
        "f1": multiclass_f1_score(probs, targets, num_classes, average=None).tolist(),
        "support": torch.bincount(targets, minlength=num_classes).tolist(),
    }


def per_class_table(results: dict[str, torch.Tensor], names: list[str], train_counts: list[int] | None = None) -> str:
    """A markdown table, worst F1 first: the classes to look at are at the top. With ``train_counts``,
    a column of each class's training photos too (report.md)."""
    scores = per_class_scores(results, len(names))
    extra = ("", "") if train_counts is None else (" train photos |", " ---: |")
    lines = [PER_CLASS_EXPLAINED, "", "| class | precision | recall | F1 | val photos |" + extra[0],
             "| --- | ---: | ---: | ---: | ---: |" + extra[1]]
    for i in sorted(range(len(names)), key=lambda i: (scores["f1"][i], names[i])):
        train = "" if train_counts is None else f" {train_counts[i]} |"
        lines.append(f"| {names[i]} | {scores['precision'][i]:.2f} | {scores['recall'][i]:.2f} | "
                     f"{scores['f1'][i]:.2f} | {scores['support'][i]} |{train}")
    return "\n".join(lines)
