"""The pictures TensorBoard and report.md show: captioned grids of photos, and the confusion matrix.

Drawn with Pillow, which needs no font files on any system and takes hundredths of a second.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

TILE = 160  # pixels per image in the grids: big enough to see, small enough to be cheap
MIN_CELL = 24  # smallest confusion-matrix cell in pixels: room for a count and a readable name
RIGHT, WRONG = (30, 150, 60), (210, 40, 40)  # green and red frames


def denormalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Undo the normalisation of a float batch: back to uint8 pixels a person can look at."""
    pixels = (images.float() * std + mean).clamp(0, 1) * 255
    return pixels.round().to(torch.uint8).cpu()


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font (no font files needed on any system)."""
    return ImageFont.load_default(size=size)


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits in ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def captioned_grid(images: torch.Tensor, captions: list[list[str]], colours: list[tuple] | None = None,
                   per_row: int = 4) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> one uint8 grid image, each tile with its caption lines underneath
    and, when ``colours`` is given, a frame in that colour."""
    font, line = _font(13), 16
    lines = max(len(c) for c in captions)
    tiles = []
    pixels = images.cpu().numpy().transpose(0, 2, 3, 1)  # numpy moves uint8 axes much faster than torch
    for i, caption in enumerate(captions):
        picture = Image.fromarray(np.ascontiguousarray(pixels[i]))
        # Small images are enlarged with visible pixels: this is exactly what the model gets.
        resample = Image.Resampling.NEAREST if picture.width < TILE else Image.Resampling.BILINEAR
        tile = Image.new("RGB", (TILE, TILE + lines * line + 4), (255, 255, 255))
        tile.paste(picture.resize((TILE, TILE), resample), (0, 0))
        draw = ImageDraw.Draw(tile)
        colour = colours[i] if colours else (0, 0, 0)
        if colours:
            draw.rectangle([0, 0, TILE - 1, TILE - 1], outline=colour, width=5)
        for j, text in enumerate(caption):
            draw.text((3, TILE + 2 + j * line), _fit(text, font, TILE - 6), fill=colour, font=font)
        tiles.append(torch.from_numpy(np.ascontiguousarray(np.asarray(tile).transpose(2, 0, 1))))
    return make_grid(torch.stack(tiles), nrow=per_row, padding=6, pad_value=255)


def confusion_matrix_image(matrix: torch.Tensor, names: list[str], title: str) -> Image.Image:
    """Class names on both axes, the count in every non-empty cell, colour = share of the true class.

    Colouring by row share keeps small classes as visible as big ones. Cells shrink as classes are added
    but never below ``MIN_CELL`` pixels, so 37 names stay readable. Drawn with Pillow (a few hundredths
    of a second) rather than matplotlib (about a second for 37 classes), because it happens every epoch.
    """
    n = len(names)
    counts = matrix.numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    colours = (colormaps["Blues"](shares)[..., :3] * 255).astype(np.uint8)  # matplotlib's blue scale
    cell = max(MIN_CELL, min(48, 900 // n))
    font, bold = _font(max(10, min(14, cell // 2 + 2))), _font(15)
    label = int(max(font.getlength(name) for name in names)) + 8
    left, top, grid = label + 30, 60, n * cell
    subtitle = "number = photos, colour = share of the true class (diagonal = right)"
    width = max(left + grid + 110, int(max(bold.getlength(title), font.getlength(subtitle))) + 20)
    image = Image.new("RGB", (width, top + grid + label + 40), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 8), title, fill=(0, 0, 0), font=bold, anchor="ma")
    draw.text((width // 2, 30), subtitle, fill=(80, 80, 80), font=font, anchor="ma")
    for row in range(n):
        y = top + row * cell
        draw.text((left - 6, y + cell // 2), names[row], fill=(0, 0, 0), font=font, anchor="rm")
        for col in range(n):
            x = left + col * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=tuple(colours[row, col].tolist()))
            if counts[row, col]:
                ink = (255, 255, 255) if shares[row, col] > 0.6 else (0, 0, 0)
                draw.text((x + cell // 2, y + cell // 2), str(counts[row, col]), fill=ink, font=font, anchor="mm")
    draw.rectangle([left - 1, top - 1, left + grid, top + grid], outline=(120, 120, 120))
    for col, name in enumerate(names):  # column names written upwards, like a spine of a book
        text = Image.new("RGB", (label, cell), (255, 255, 255))
        ImageDraw.Draw(text).text((label - 4, cell // 2), name, fill=(0, 0, 0), font=font, anchor="rm")
        image.paste(text.rotate(90, expand=True), (left + col * cell, top + grid + 4))
    draw.text((left + grid // 2, top + grid + label + 10), "predicted class", fill=(0, 0, 0), font=bold, anchor="ma")
    axis = Image.new("RGB", (grid, 22), (255, 255, 255))
    ImageDraw.Draw(axis).text((grid // 2, 2), "true class", fill=(0, 0, 0), font=bold, anchor="ma")
    image.paste(axis.rotate(90, expand=True), (4, top))
    # Colour bar: the scale of shares, 1 at the top.
    bar = (colormaps["Blues"](np.linspace(1, 0, grid))[:, :3] * 255).astype(np.uint8)
    image.paste(Image.fromarray(np.repeat(bar[:, None], 16, axis=1)), (left + grid + 20, top))
    for share in (0, 0.5, 1):
        draw.text((left + grid + 40, top + round((1 - share) * (grid - 1))), f"{share:g}", fill=(0, 0, 0), font=font,
                  anchor="lm")
    return image
