"""Predict with this exported model. Needs only numpy, Pillow and onnxruntime (no PyTorch):

    pip install onnxruntime numpy pillow
    pip install pillow-heif      # only for iPhone photos (HEIC)
    python predict.py photo.jpg more-photos/ [--top-k 3] [--csv predictions.csv]

It reads model.onnx, labels.json and preprocess.json from its own folder. Images are prepared exactly
as in training's validation: upright 8-bit RGB, shorter side resized to preprocess.json's "resize" with
its "interpolation", a centre crop of "crop", then (pixel / 255 - mean) / std, channels first.
A TorchScript bundle (model.pt) is read with PyTorch instead, the one case that needs it.

(This file is copied into every bundle by the project's ``export`` command; it must not import the
project or PyTorch at the top.)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

try:  # optional: reads HEIC, the iPhone's format (AVIF is built into Pillow 11.3 and later)
    from pillow_heif import register_heif_opener
except ImportError:
    register_heif_opener = None
else:
    register_heif_opener()

HERE = Path(__file__).resolve().parent
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
Image.init()
# The only formats decoded: Pillow knows others (EPS runs Ghostscript) that no photo needs.
PHOTO_FORMATS = tuple(name for name in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
                      if name in Image.OPEN)
NEEDS_HEIF = "a HEIC photo: install pillow-heif to read it (pip install pillow-heif)"
BACKGROUND = (124, 116, 104)  # transparent pixels become this neutral grey, as in training
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
              "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}


# ---- reading a photo the way training did ----------------------------------------------------------
def load_rgb(path: str | Path | BinaryIO, min_size: int | None = None) -> Image.Image:
    """Decode a file (a name or an open binary file) into upright 8-bit RGB (EXIF rotation, transparency,
    16-bit and CMYK handled)."""
    with Image.open(path, formats=PHOTO_FORMATS) as image:
        if min_size and image.format in ("JPEG", "MPO"):  # MPO: a JPEG with extra pictures (some phones)
            image.draft("RGB", (min_size, min_size))  # decode big JPEGs at a reduced scale, as training did
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            with contextlib.suppress(Exception):  # a broken EXIF block: keep the pixels as they are
                image = ImageOps.exif_transpose(image)
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = to_8bit_grey(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "L" and "transparency" in image.info:
        return to_rgb(image.convert("LA"))
    return image.convert("RGB")


def to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit or float greyscale -> 8-bit, scaled by the format's range (not clipped)."""
    values = np.array(image, dtype=np.float32)  # a copy of its own, scaled in place below (no float64 copy)
    high = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        full = 1.0 if high <= 1.0 else 255.0 if high <= 255 else max(high, 1.0)
    elif image.mode.startswith("I;16") or 255 < high <= 65535:
        full = 65535.0
    else:
        full = 255.0 if high <= 255 else max(high, 1.0)
    values *= np.float32(255.0 / full)
    scaled = np.clip(np.round(values, out=values), 0, 255, out=values).astype(np.uint8)
    return Image.fromarray(scaled if scaled.ndim == 2 else scaled[..., 0], mode="L")


def preprocess(image: Image.Image, config: dict) -> np.ndarray:
    """RGB image -> float32 array (3, H, W): resize the shorter side, centre-crop, normalise."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = config["resize"], int(config["resize"] * long / short)
    size = (new_short, new_long) if width <= height else (new_long, new_short)
    if size != image.size:
        image = image.resize(size, RESAMPLING[config["interpolation"]])
    crop_h, crop_w = config["crop"]
    width, height = image.size
    if crop_w > width or crop_h > height:  # smaller than the crop: pad with black around it first
        padded = Image.new("RGB", (max(width, crop_w), max(height, crop_h)))
        left, top = (crop_w - width) // 2 if crop_w > width else 0, (crop_h - height) // 2 if crop_h > height else 0
        padded.paste(image, (left, top))
        image, (width, height) = padded, padded.size
    top, left = int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))
    image = image.crop((left, top, left + crop_w, top + crop_h))
    pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32)
    mean = np.asarray(config["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(config["std"], dtype=np.float32).reshape(3, 1, 1)
    return (pixels / np.float32(255.0) - mean) / std


# ---- the model -------------------------------------------------------------------------------------
class Model:
    """model.onnx through ONNX Runtime on the CPU, or model.pt through TorchScript."""

    def __init__(self, folder: Path = HERE, threads: int = 0):
        self.labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        self.config = json.loads((folder / "preprocess.json").read_text(encoding="utf-8"))
        if (folder / "model.onnx").is_file():
            try:
                import onnxruntime
            except ImportError:
                sys.exit("Error: this needs onnxruntime; install it with: pip install onnxruntime numpy pillow")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads  # 0: one per CPU core
            self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                                        providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name
            self.torch_model = None
        elif (folder / "model.pt").is_file():
            import torch  # only TorchScript bundles need PyTorch

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": it still works
                self.torch_model = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
            self.session = None
        else:
            sys.exit(f"Error: {folder} has neither model.onnx nor model.pt next to predict.py.")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, H, W) -> logits (N, classes)."""
        if self.session is not None:
            return self.session.run(None, {self.input_name: batch})[0]
        import torch

        with torch.inference_mode():
            return self.torch_model(torch.from_numpy(batch)).numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# ---- the command line ------------------------------------------------------------------------------
def find_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    files, skipped = [], []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in file.relative_to(path).parts):
                    continue
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(file)
                else:
                    skipped.append((str(file), "not an image file"))
        elif path.is_file():
            files.append(path)
        else:
            skipped.append((given, "no such file or folder"))
    return files, skipped


def predict(model: Model, files: list[Path], top_k: int = 3, batch_size: int = 32):
    """Yields (path, [(label, probability), ...] best first) and collects unreadable files."""
    rows, skipped = [], []
    min_size = model.config.get("decode_min_size")
    for start in range(0, len(files), batch_size):
        arrays, names = [], []
        for file in files[start:start + batch_size]:
            try:
                arrays.append(preprocess(load_rgb(file, min_size), model.config))
                names.append(str(file))
            except Image.DecompressionBombError:
                skipped.append((str(file), "too large for Pillow to decode safely; downscale it"))
            except (OSError, ValueError) as err:
                heic = register_heif_opener is None and file.suffix.lower() in (".heic", ".heif")
                why = NEEDS_HEIF if heic else f"not an image Pillow can read ({type(err).__name__})"
                skipped.append((str(file), why))
        if not arrays:
            continue
        probabilities = softmax(model.logits(np.stack(arrays)))
        for name, row in zip(names, probabilities, strict=True):
            best = np.argsort(-row, kind="stable")[:top_k]
            rows.append((name, [(model.labels[i], float(row[i])) for i in best]))
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict the class of photos with this exported model.")
    parser.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--top-k", type=int, default=3, help="how many classes to show per image (default 3)")
    parser.add_argument("--csv", metavar="FILE", help="also save path,label,probability,label_2,... rows here")
    args = parser.parse_args(argv)

    model = Model(HERE)
    files, skipped = find_images(args.images)
    rows, unreadable = predict(model, files, max(1, args.top_k))
    skipped += unreadable
    if not rows:
        reason = f"{skipped[0][0]}: {skipped[0][1]}" if skipped else "no images found"
        print(f"Error: nothing to predict ({reason}); pass JPEG, PNG, WebP, HEIC, BMP, GIF or TIFF photos.",
              file=sys.stderr)
        return 1
    for name, top in rows:
        print(f"{name}\t" + "  ".join(f"{label} {p:.1%}" for label, p in top))
    for name, reason in skipped:
        print(f"Skipped {name}: {reason}", file=sys.stderr)
    if args.csv:
        k = len(rows[0][1])
        with open(args.csv, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["path", "label", "probability"]
                            + [f"{column}_{rank}" for rank in range(2, k + 1) for column in ("label", "probability")])
            for name, top in rows:
                writer.writerow([name] + [value for label, p in top for value in (label, f"{p:.4f}")])
        print(f"Saved {len(rows)} rows to {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
