"""Sample grids: the pictures the original study judged by eye."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from suite.atomic import write_atomic

UNCONDITIONAL_GRID = (8, 8)
SAMPLES_PER_CLASS = 10


def eval_noise_and_labels(latent_dim: int, num_classes: int, seed: int
                          ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """Fixed per trial (same on every rank and after a resume): noise, labels, grid shape.

    Conditional models get one row per class, `SAMPLES_PER_CLASS` columns.
    """
    rng = np.random.default_rng([seed, 0x5A4D])
    if num_classes:
        rows, cols = num_classes, SAMPLES_PER_CLASS
        labels = np.repeat(np.arange(num_classes), cols).astype(np.int32)
    else:
        rows, cols = UNCONDITIONAL_GRID
        labels = None
    noise = rng.standard_normal((rows * cols, latent_dim)).astype(np.float32)
    return noise, labels, (rows, cols)


def images_to_grid(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """(N, H, W, C) floats in [0, 1] -> one uint8 mosaic, row-major, with a border."""
    n, h, w, c = images.shape
    if n < rows * cols:
        raise ValueError(f"{n} images cannot fill a {rows}x{cols} grid")
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i in range(rows * cols):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top:top + h, left:left + w] = images[i]
    out = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return out[..., 0] if c == 1 else out


def save_grid_png(images: np.ndarray, rows: int, cols: int, path: Path, scale: int = 2) -> None:
    grid = Image.fromarray(images_to_grid(images, rows, cols))
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    write_atomic(path, lambda tmp: grid.save(tmp, format="PNG"))
