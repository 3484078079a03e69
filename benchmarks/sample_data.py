"""Write real, small image datasets to disk without downloading anything.

``digits``: scikit-learn's 1,797 handwritten digits (8x8 scans that ship inside the installed
scikit-learn package), upscaled and written as PNG files in the class-per-folder convention:
``OUT/train/<digit>/*.png``. Used by ``make quickstart`` and the benchmarks.

    python benchmarks/sample_data.py digits data/digits [--size 32] [--per-class N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_digits(out: Path, size: int = 32, per_class: int | None = None) -> Path:
    """Write the digits as RGB PNGs, one folder per class; returns ``out``. Re-running is a no-op."""
    from sklearn.datasets import load_digits

    out = Path(out)
    marker = out / ".complete"
    if marker.exists():
        return out
    digits = load_digits()
    written: dict[int, int] = {}
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = int(label)
        if per_class is not None and written.get(label, 0) >= per_class:
            continue
        written[label] = written.get(label, 0) + 1
        # 0..16 ink values -> dark ink on white paper, like a real scan.
        grey = (255 - pixels * (255 / 16)).astype(np.uint8)
        image = Image.fromarray(grey).resize((size, size), Image.BILINEAR).convert("RGB")
        folder = out / "train" / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index:04d}.png")
    marker.touch()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["digits"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=None)
    args = parser.parse_args()
    path = write_digits(args.out, args.size, args.per_class)
    print(f"Wrote the digits dataset to {path}/train/<digit>/")


if __name__ == "__main__":
    main()
