"""Sample grids: the pictures the original study judged by eye."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from suite.common.atomic import write_atomic

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


GIF_NAME = "samples.gif"  # beside the epoch_NNNN.png grids it animates
GIF_FRAME_MS = 600
GIF_LAST_FRAME_MS = 2000
_EPOCH_PNG = re.compile(r"epoch_(\d+)\.png")


def grid_pngs(samples_dir: Path, upto_epoch: int | None = None) -> list[tuple[int, Path]]:
    """The trial's sample grids as (epoch, path) in epoch order, up to `upto_epoch`
    (grids of later epochs left by an earlier attempt are not part of this run yet)."""
    found = []
    for path in Path(samples_dir).glob("epoch_*.png"):
        match = _EPOCH_PNG.fullmatch(path.name)
        if match and (upto_epoch is None or int(match.group(1)) <= upto_epoch):
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_grid_gif(samples_dir: Path, upto_epoch: int | None = None) -> Path | None:
    """An animated GIF of the trial's sample grids across milestones, each frame labelled
    with its epoch, written atomically to `samples_dir/samples.gif` (None without grids)."""
    grids = []
    for epoch, path in grid_pngs(samples_dir, upto_epoch):
        try:
            with Image.open(path) as im:
                im.load()
                grids.append((epoch, im))
        except (OSError, ValueError):  # a damaged grid is left out, not fatal
            continue
    if not grids:
        return None
    grey = all(im.mode in ("1", "L", "LA") for _, im in grids)  # MNIST: exact 256 greys
    frames = [_labelled_frame(im.convert("L" if grey else "RGB"), f"epoch {epoch}")
              for epoch, im in grids]
    size = (max(f.width for f in frames), max(f.height for f in frames))
    frames = [f if f.size == size else f.resize(size, Image.NEAREST) for f in frames]
    if not grey:  # one palette from every frame's colours, so colours do not flicker
        palette = _stacked(frames).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_LAST_FRAME_MS]
    out = Path(samples_dir) / GIF_NAME
    write_atomic(out, lambda tmp: frames[0].save(
        tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
        loop=0, optimize=False))
    return out


def _stacked(frames: list[Image.Image]) -> Image.Image:
    """All RGB frames one above the other (thumbnails when many), to choose a palette from."""
    step = max(1, int(np.ceil(np.sqrt(len(frames) / 4))))
    small = [f if step == 1 else f.resize((max(1, f.width // step), max(1, f.height // step)),
                                          Image.NEAREST) for f in frames]
    out = Image.new("RGB", (max(f.width for f in small), sum(f.height for f in small)), "white")
    top = 0
    for f in small:
        out.paste(f, (0, top))
        top += f.height
    return out


def _labelled_frame(grid: Image.Image, label: str) -> Image.Image:
    """The grid with a white strip underneath that names the epoch."""
    strip = 16
    frame = Image.new(grid.mode, (grid.width, grid.height + strip), "white")
    frame.paste(grid, (0, 0))
    ImageDraw.Draw(frame).text((4, grid.height + 2), label, fill="black")
    return frame
