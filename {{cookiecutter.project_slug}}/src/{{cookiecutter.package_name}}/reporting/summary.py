"""What ``train`` prints about the run: one line about the data at the start, a table at the end."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from {{ cookiecutter.package_name }}.dataset.folders import DatasetSplits
from {{ cookiecutter.package_name }}.dataset.inspection import TOO_LARGE


def data_lines(splits: DatasetSplits, skipped_csv: Path | None = None) -> list[str]:
    """One line about the data (classes, images per split, anything skipped), then any warnings."""
    made = " (val split made from train)" if splits.val_was_made else ""
    line = (
        f"Data: {len(splits.classes)} classes; {len(splits.train)} train, {len(splits.val)} val"
        f"{made}, {len(splits.test)} test images"
    )
    skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(splits.skipped.items()))
    if skipped:
        line += f"; skipped {skipped}" + (f" (listed in {skipped_csv})" if skipped_csv else "")
    lines = [line]
    if splits.skipped.get("unreadable"):
        lines.append(f"[yellow]Warning:[/] {splits.skipped['unreadable']} image file(s) cannot be decoded and are "
                     "left out; check-data DATA_DIR lists them with the reason.")
    if splits.skipped.get(TOO_LARGE):
        lines.append(f"[yellow]Warning:[/] {splits.skipped[TOO_LARGE]} image(s) are too large for Pillow to decode "
                     "safely and are left out; to include them, downscale them (check-data DATA_DIR lists them).")
    if splits.empty_classes:
        lines.append(f"[yellow]Warning:[/] empty class folder(s) skipped: {', '.join(splits.empty_classes)}")
    return lines


def result_table(metrics: dict) -> Table:
    """The final table: the best checkpoint's scores, where the weights came from, time and speed."""
    table = Table(title="Result (best checkpoint)", show_header=False)
    table.add_row("val accuracy", f"{metrics['val_acc']:.1%}")
    table.add_row("val macro F1", f"{metrics['val_f1_macro']:.3f}")
    table.add_row("val loss", f"{metrics['val_loss']:.3f}")
    if "test_acc" in metrics:
        table.add_row("test accuracy", f"{metrics['test_acc']:.1%}")
    table.add_row("epochs", str(metrics["epochs"]))
    table.add_row("starting weights", metrics["pretrained"])
    table.add_row("time", f"{metrics['seconds']:.0f} s")
    if metrics["train_images_per_s"]:
        table.add_row("training speed", f"{metrics['train_images_per_s']:.0f} images/s")
    return table
