"""Stand-in "pretrained" weights, made offline, for comparing fine-tuning recipes.

Real ImageNet weights cannot be downloaded on the machines this template is developed on, and
random weights make a poor test of a fine-tuning recipe: what fine-tuning does well or badly
(frozen head training, BatchNorm statistics, how far the backbone may move) only shows when the
backbone already knows something. So this script teaches a timm backbone something first, on a
task that is NOT the one it will be fine-tuned on:

    pretext task   52 classes: the letters A-Z and a-z, rendered in every font installed with
                   matplotlib and the system, in random colours, sizes, angles and positions, on
                   random backgrounds (smooth colour noise and crops of scikit-image's sample
                   photos). No digits, so the digits benchmark is a real transfer.

and saves the backbone's state_dict, which ``vs_fastai.py --weights FILE`` then gives to both fastai and
the template. It is a stand-in: where real ImageNet weights are at hand, use them instead.

    taskset -c 0,1 python benchmarks/pretext.py efficientnet_lite0 --out efficientnet_lite0-letters.pth
"""

from __future__ import annotations

import argparse
import math
import random
import string
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LETTERS = string.ascii_uppercase + string.ascii_lowercase


def font_files() -> list[Path]:
    """Text fonts that ship with matplotlib, plus the system's TrueType fonts (no symbol fonts)."""
    import matplotlib

    candidates = list((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))
    candidates += list(Path("/usr/share/fonts").rglob("*.ttf"))
    skip = ("Sym", "Siz", "NonUni", "LastResort", "cmex", "cmsy", "cmmi", "Math")  # symbols, not letters
    unique = {f.name: f for f in candidates if not any(s in f.name for s in skip)}  # matplotlib's DejaVu once
    return sorted(unique.values(), key=lambda f: f.name)


def photo_crops() -> list[np.ndarray]:
    """scikit-image's sample photos that ship inside the package (no download), as RGB arrays."""
    from skimage import data

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
                 "camera", "coins", "moon", "brick", "grass", "gravel", "clock", "text", "page"):
        try:
            array = getattr(data, name)()
        except Exception:  # a photo that would need a download
            continue
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        photos.append(np.ascontiguousarray(array[..., :3]).astype(np.uint8))
    return photos


def background(rng: random.Random, size: int, photos: list[np.ndarray]) -> Image.Image:
    if photos and rng.random() < 0.5:
        photo = rng.choice(photos)
        side = rng.randint(size // 2, min(photo.shape[:2]))
        top, left = rng.randint(0, photo.shape[0] - side), rng.randint(0, photo.shape[1] - side)
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        return crop
    cells = rng.choice([1, 2, 3])
    noise = np.array([[[rng.randint(0, 255) for _ in range(3)] for _ in range(cells)] for _ in range(cells)], np.uint8)
    return Image.fromarray(noise).resize((size, size), Image.BICUBIC)


def render(rng: random.Random, letter: str, font: Path, size: int, photos: list[np.ndarray]) -> Image.Image:
    """One letter on a random background, randomly placed, sized, turned, coloured and blurred."""
    canvas = background(rng, size * 2, photos)
    ink = tuple(rng.randint(0, 255) for _ in range(3))
    mean = np.asarray(canvas).reshape(-1, 3).mean(0)
    if np.abs(np.array(ink) - mean).sum() < 250:  # keep the letter visible against its background
        ink = (0, 0, 0) if mean.mean() > 127 else (255, 255, 255)
    glyph = Image.new("L", (size * 2, size * 2), 0)
    typeface = ImageFont.truetype(str(font), rng.randint(int(size * 0.8), int(size * 1.3)))
    ImageDraw.Draw(glyph).text((size, size), letter, fill=255, font=typeface, anchor="mm")
    glyph = glyph.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR,
                         translate=(rng.uniform(-0.15, 0.15) * size, rng.uniform(-0.15, 0.15) * size))
    canvas.paste(Image.new("RGB", canvas.size, ink), mask=glyph)
    if rng.random() < 0.3:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return canvas.resize((size, size), Image.BILINEAR)


def make_letters(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` rendered letters as a uint8 array (N, size, size, 3) and their class indices."""
    rng = random.Random(seed)
    fonts, photos = font_files(), photo_crops()
    labels = np.array([i % len(LETTERS) for i in range(count)])
    images = np.stack([np.asarray(render(rng, LETTERS[label], rng.choice(fonts), size, photos)) for label in labels])
    return images, labels


def pretrain(backbone: str, out: Path, size: int, count: int, epochs: int, batch: int, lr: float, seed: int) -> None:
    import timm
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    start = time.perf_counter()
    images, labels = make_letters(count, size, seed)
    val_images, val_labels = make_letters(count // 10, size, seed + 1)
    print(f"rendered {count} + {count // 10} letters in {time.perf_counter() - start:.0f} s "
          f"({len(font_files())} fonts)", flush=True)

    model = timm.create_model(backbone, pretrained=False, num_classes=len(LETTERS))
    config = timm.data.resolve_model_data_config(model)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(config["std"]).view(1, 3, 1, 1) * 255

    def to_input(array: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(array).permute(0, 3, 1, 2).float() - mean) / std

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * math.ceil(count / batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.2)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(count)
        for first in range(0, count, batch):
            chosen = order[first:first + batch].numpy()
            loss = F.cross_entropy(model(to_input(images[chosen])), torch.from_numpy(labels[chosen]),
                                   label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(to_input(val_images[i:i + 256])).argmax(1)
                                   for i in range(0, len(val_images), 256)])
        accuracy = (predicted.numpy() == val_labels).mean()
        print(f"epoch {epoch + 1}/{epochs}: letters val accuracy {accuracy:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    # The pretext head (52 letters) is dropped: fine-tuning gives every backbone a fresh head anyway.
    model.reset_classifier(1000)
    torch.save(model.state_dict(), out)
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", nargs="?", default="efficientnet_lite0")
    parser.add_argument("--out", type=Path, help="weights file to write (default: BACKBONE-letters.pth)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--count", type=int, default=20000, help="rendered letters to train on")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or Path(f"{args.backbone}-letters.pth")
    pretrain(args.backbone, out, args.image_size, args.count, args.epochs, args.batch_size, args.lr, args.seed)


if __name__ == "__main__":
    main()
