"""What ``predict`` gives back: the table in the terminal and the CSV file, one row per image.

    path,label,probability,label_2,probability_2,...    (and best_guess, with --threshold)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from {{ cookiecutter.package_name }}.errors import UserError


@dataclass
class Prediction:
    """The top-k classes of one image, best first."""

    path: str
    labels: list[str]
    probabilities: list[float]


def show_predictions(predictions: list[Prediction], skipped: list[tuple[str, str]], inputs: list[str], how: str,
                     csv_path: str | None = None, threshold: float | None = None) -> None:
    """predict's output: the table, the files skipped and why, the CSV (with ``csv_path``), one closing line.

    ``how``: the model and the time it took, for the closing line. Nothing predicted is an error.
    """
    if not predictions:
        if not skipped:
            raise UserError(f"no images found in {' '.join(inputs)}; pass photos or folders of photos.")
        name, reason = skipped[0]
        more = f" (and {len(skipped) - 1} more file(s))" if len(skipped) > 1 else ""
        raise UserError(f"nothing to predict: {name}: {reason}{more}; "
                        "pass JPEG, PNG, WebP, HEIC, BMP, GIF or TIFF photos.")
    console = Console(soft_wrap=True)
    console.print(prediction_table(predictions, threshold))
    for name, reason in skipped:
        console.print(f"[yellow]Skipped[/] {escape(str(name))}: {escape(reason)}")
    if csv_path:
        write_csv(predictions, Path(csv_path).expanduser(), threshold)
        console.print(f"Saved {len(predictions)} rows to {escape(str(csv_path))}")
    console.print(f"{len(predictions)} image(s) predicted with {how}"
                  + (f"; {len(skipped)} skipped" if skipped else ""))


def shown_label(prediction: Prediction, threshold: float | None) -> str:
    """The top-1 class, or ``unsure`` when its probability is below ``threshold``."""
    if threshold is not None and prediction.probabilities[0] < threshold:
        return "unsure"
    return prediction.labels[0]


def prediction_table(predictions: list[Prediction], threshold: float | None) -> Table:
    """The top-1 class of every image with its probability (and the next most likely ones)."""
    table = Table(title="Predictions", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("top-1 class")
    table.add_column("probability", justify="right")
    if len(predictions[0].labels) > 1:
        table.add_column("next most likely")
    for prediction in predictions:
        label = escape(shown_label(prediction, threshold))  # Rich reads [..] in a name as markup
        if label == "unsure":
            label = f"[yellow]unsure[/] (best guess {escape(prediction.labels[0])})"
        row = [escape(str(prediction.path)), label, f"{prediction.probabilities[0]:.1%}"]
        if len(prediction.labels) > 1:
            others = zip(prediction.labels[1:], prediction.probabilities[1:], strict=True)
            row.append(", ".join(f"{escape(name)} {p:.1%}" for name, p in others))
        table.add_row(*row)
    return table


def write_csv(predictions: list[Prediction], path: Path, threshold: float | None = None) -> None:
    """One row per image: path, label (top-1 or unsure), probability, then label_2, probability_2, ..."""
    k = len(predictions[0].labels)
    header = ["path", "label", "probability"]
    for rank in range(2, k + 1):
        header += [f"label_{rank}", f"probability_{rank}"]
    if threshold is not None:
        header.append("best_guess")  # the top-1 class even when the label says unsure
    try:
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            for p in predictions:
                row = [p.path, shown_label(p, threshold), f"{p.probabilities[0]:.4f}"]
                for name, probability in zip(p.labels[1:], p.probabilities[1:], strict=True):
                    row += [name, f"{probability:.4f}"]
                if threshold is not None:
                    row.append(p.labels[0])
                writer.writerow(row)
    except OSError as err:
        raise UserError(f"cannot write {path} ({err.strerror}); check that its folder exists.") from None
