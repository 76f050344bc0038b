"""A labelled image grid a person can look at: one row per method, the same sample slots side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..files.writing import atomic_write
from ..pipeline.ranges import CHAIN_RANGE, rescale

__all__ = ["save_labelled_grid"]


def _to_uint8(images: torch.Tensor, cell: int) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, cell, cell, 3] uint8, nearest-neighbour upscaled."""
    images = rescale(images.detach().float().cpu().clamp(*CHAIN_RANGE), CHAIN_RANGE, (0.0, 1.0))
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    images = torch.nn.functional.interpolate(images[:, :3], size=(cell, cell), mode="nearest")
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def save_labelled_grid(path: str | Path, rows: Sequence[tuple[str, torch.Tensor]], *, cell: int = 48, label_width: int = 150) -> Path:
    """Write a PNG with one labelled row of images per ``(label, images)`` entry.

    Args:
        path: destination (written atomically).
        rows: ``(label, images)`` with images ``[K, C, H, W]`` in [-1, 1]; rows may
            have different K.
        cell: pixel size each image is upscaled to.
        label_width: pixels reserved left of each row for its label.
    """
    if not rows:
        raise ValueError("save_labelled_grid needs at least one row")
    columns = max(len(images) for _, images in rows)
    pad = 2
    canvas = Image.new("RGB", (label_width + columns * (cell + pad), len(rows) * (cell + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        top = r * (cell + pad)
        draw.text((4, top + cell // 2 - 6), label, fill="black")
        for c, tile in enumerate(_to_uint8(images, cell)):
            canvas.paste(Image.fromarray(tile), (label_width + c * (cell + pad), top))
    return atomic_write(path, lambda temp: canvas.save(temp, format="PNG"))
