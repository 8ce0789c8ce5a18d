"""Figures of the aggregated report (big sweeps): a metric against each axis with t-
intervals (one panel per axis, one line per model), and the sample grids of the chosen
configurations side by side. Same conventions as `analysis.plots`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.intervals import t_interval
from analysis.plots import NoDataError, _colors, _figure, _read_image, _save
from analysis.rows import select_rows
from suite.store import schema

PANEL_COLUMNS = 4
SAMPLES_PER_ROW = 6  # 3 best and 3 worst side by side


def plot_axis_effects(df: pd.DataFrame, metric: str, axes: Sequence[str], out: Path,
                      confidence: float = 0.95, line: str = schema.MODEL) -> Path:
    """`metric` at the final epoch against each axis in `axes` (one panel each): per
    `line` value and axis value, the mean over every trial there (all other axes and
    seeds) with its t-interval as error bars."""
    data = select_rows(df, "final") if len(df) else df
    data = data[data[metric].notna()] if metric in data else data.iloc[0:0]
    axes = [a for a in axes if a in data and a != line and data[a].nunique() > 1]
    if data.empty or not axes:
        raise NoDataError(f"no values of {metric} along a varying axis")
    lines = sorted(data[line].dropna().unique()) if line in data else [None]
    colors = _colors([str(v) for v in lines])
    cols = min(PANEL_COLUMNS, len(axes))
    rows = -(-len(axes) // cols)
    fig, grid = _figure(rows, cols, width=4.0, height=3.2)
    for i, axis in enumerate(axes):
        ax = grid[i // cols][i % cols]
        values = sorted(data[axis].dropna().unique(), key=_order)
        position = {v: j for j, v in enumerate(values)}
        for value in lines:
            sub = data if value is None else data[data[line] == value]
            stats = sub.groupby(axis)[metric].agg(["mean", "std", "count"])
            if stats.empty:
                continue
            low, high = t_interval(stats["mean"], stats["std"], stats["count"], confidence)
            x = np.array([position[v] for v in stats.index], dtype="float64")
            order = np.argsort(x)
            err = np.vstack([stats["mean"] - low, high - stats["mean"]])[:, order]
            ax.errorbar(x[order], stats["mean"].to_numpy()[order], yerr=np.nan_to_num(err),
                        marker="o", capsize=3, color=colors[str(value)],
                        label=str(value) if value is not None else metric)
        ax.set_xticks(range(len(values)), [str(v) for v in values],
                      rotation=20 if len(values) > 4 else 0)
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for j in range(len(axes), rows * cols):
        grid[j // cols][j % cols].set_visible(False)
    return _save(fig, out)


def plot_sample_panels(items: Sequence[tuple[str, Path | None]], out: Path,
                       title: str | None = None) -> Path:
    """The images of `items` ((caption, path)) side by side, each titled by its caption;
    a missing file says so in its panel."""
    if not items:
        raise NoDataError("no configurations to show")
    images = [_read_image(p) if p is not None else None for _, p in items]
    sizes = [im.shape[:2] for im in images if im is not None]
    h, w = np.max(sizes, axis=0) if sizes else (400, 400)
    cols = min(len(items), SAMPLES_PER_ROW)
    rows = -(-len(items) // cols)
    cell_w = min(3.2, max(2.0, w / 120))
    fig, grid = _figure(rows, cols, width=cell_w, height=cell_w * h / w + 0.6)
    for i in range(rows * cols):
        ax = grid[i // cols][i % cols]
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(items):
            ax.set_visible(False)
            continue
        caption, image = items[i][0], images[i]
        if image is None:
            ax.text(0.5, 0.5, "PNG missing", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255,
                      interpolation="antialiased")
        ax.set_title(caption, fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def _order(value: object) -> tuple:
    """Numbers in numeric order, then text."""
    try:
        return (0, float(value), "")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
