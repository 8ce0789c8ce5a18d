"""Figures as PNG files: each function takes result rows, writes one PNG, returns its path.

Rendering goes through matplotlib's Agg canvas on a bare `Figure` (no pyplot):
no window, no global backend switch, safe on a headless node. A function with
nothing to draw raises `NoDataError`, which `analysis.report` turns into a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from analysis.floors import FLOOR_LABEL, floor_column
from analysis.load import sample_path
from analysis.rows import DESIGN_COLUMNS, config_label, select_rows, varying_columns
from analysis.tables import pareto_front, scaling
from suite.store import schema

DPI = 110


class NoDataError(ValueError):
    """Nothing to plot (the message says what was missing)."""


def plot_metric_vs_epoch(df: pd.DataFrame, metric: str, out: Path,
                         facet: str = schema.MODEL, ok_only: bool = True,
                         lines: Sequence[str] | None = None) -> Path:
    """`metric` against epoch: one panel per `facet` value, one line per configuration
    (upsampling and any other design column that varies, or the `lines` columns: the
    mean over every other one), mean over seeds with a ±std band."""
    data = select_rows(df, None, ok_only) if len(df) else df
    data = data[data[metric].notna()] if metric in data else data.iloc[0:0]
    if data.empty:
        raise NoDataError(f"no values of {metric}")
    line_cols = [c for c in varying_columns(data, DESIGN_COLUMNS) if c != facet]
    if schema.UPSAMPLING in data and schema.UPSAMPLING not in line_cols:
        line_cols.insert(0, schema.UPSAMPLING)
    if lines is not None:
        line_cols = [c for c in lines if c in data and c != facet]
    fig, panels, colors = _facet_panels(data, line_cols, facet, width=4.2, height=3.2)
    for ax, value, sub in panels:
        for line, rows in sub.groupby("_line", sort=True):
            stats = rows.groupby(schema.EPOCH)[metric].agg(["mean", "std"]).sort_index()
            x = stats.index.to_numpy(dtype="float64")
            mean, std = stats["mean"].to_numpy(), stats["std"].to_numpy()
            ax.plot(x, mean, marker="o", color=colors[line], label=line)
            band = np.isfinite(std)
            if band.any():
                ax.fill_between(x[band], (mean - std)[band], (mean + std)[band],
                                color=colors[line], alpha=0.2, linewidth=0)
        _draw_floor(ax, sub, metric)
        ax.set_title(str(value) if value is not None else metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, out)


def plot_throughput(df: pd.DataFrame, out: Path, at_epoch: int | str | None = "final",
                    ok_only: bool = True, metric: str = schema.IMAGES_PER_SEC) -> Path:
    """Training images/s (or `metric`, e.g. MFU) as grouped bars: model (and other varying
    design columns) on the x axis, one bar per upsampling; error bars: std over seeds."""
    data = select_rows(df, at_epoch, ok_only) if len(df) else df
    data = data[data[metric].notna()] if metric in data else data.iloc[0:0]
    if data.empty:
        raise NoDataError(f"no values of {metric}")
    group_cols = [c for c in varying_columns(data, DESIGN_COLUMNS) if c != schema.UPSAMPLING]
    if schema.MODEL not in group_cols:
        group_cols.insert(0, schema.MODEL)
    data = data.assign(_group=config_label(data, group_cols))
    stats = data.groupby(["_group", schema.UPSAMPLING])[metric].agg(["mean", "std"])
    groups = sorted(data["_group"].unique())
    variants = sorted(data[schema.UPSAMPLING].unique())
    colors = _colors(variants)
    fig, axes = _figure(1, 1, width=max(5.0, 1.0 + 0.5 * len(groups) * len(variants)), height=3.6)
    ax = axes[0][0]
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        means = [stats["mean"].get((g, v), np.nan) for g in groups]
        stds = [stats["std"].get((g, v), np.nan) for g in groups]
        x = np.arange(len(groups)) + (i - (len(variants) - 1) / 2) * width
        stds = np.asarray(stds, dtype="float64")
        yerr = np.nan_to_num(stds) if np.isfinite(stds).any() else None  # one seed: no bars
        ax.bar(x, means, width, yerr=yerr, capsize=3, label=v, color=colors[v])
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20 if len(groups) > 4 else 0)
    ax.set_ylabel("training images / s" if metric == schema.IMAGES_PER_SEC else metric)
    ax.set_title(f"{'throughput' if metric == schema.IMAGES_PER_SEC else metric} by model "
                 "and upsampling")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title=schema.UPSAMPLING, fontsize="small")
    return _save(fig, out)


def plot_scaling(df: pd.DataFrame, out: Path, at_epoch: int | str | None = "final",
                 by: Sequence[str] | None = None) -> Path:
    """Images/s and parallel efficiency against workers, one line per configuration
    (of `by`, default `tables.SCALING_KEYS`), with the ideal (linear) line from each
    configuration's 1-worker throughput."""
    table = scaling(df, by=by, at_epoch=at_epoch) if len(df) else pd.DataFrame()
    if table.empty or table[schema.WORKERS].nunique() < 2:
        raise NoDataError("fewer than two worker counts")
    by = varying_columns(table, [c for c in table.columns
                                 if c in DESIGN_COLUMNS and c != schema.WORKERS])
    table = table.assign(_line=config_label(table, by))
    colors = _colors(sorted(table["_line"].unique()))
    fig, axes = _figure(1, 2, width=4.6, height=3.4)
    ax_ips, ax_eff = axes[0]
    for line, rows in table.groupby("_line", sort=True):
        rows = rows.sort_values(schema.WORKERS)
        w = rows[schema.WORKERS].to_numpy(dtype="float64")
        ax_ips.errorbar(w, rows[schema.IMAGES_PER_SEC], yerr=rows["std"].fillna(0),
                        marker="o", capsize=3, color=colors[line], label=line)
        single = rows.loc[rows[schema.WORKERS] == 1, schema.IMAGES_PER_SEC]
        if len(single):
            ax_ips.plot(w, w * float(single.iloc[0]), linestyle="--", color=colors[line],
                        alpha=0.5)
        ax_eff.plot(w, rows["efficiency"], marker="o", color=colors[line], label=line)
    ax_ips.set_title("throughput (dashed: ideal)")
    ax_ips.set_ylabel("training images / s")
    ax_eff.set_title("parallel efficiency")
    ax_eff.set_ylabel("speed-up / workers")
    ax_eff.axhline(1.0, color="grey", linestyle=":")
    ax_eff.set_ylim(0, max(1.1, 1.1 * float(table["efficiency"].max(skipna=True) or 0)))
    for ax in (ax_ips, ax_eff):
        ax.set_xlabel("workers")
        ax.set_xticks(sorted(table[schema.WORKERS].unique()))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, out)


def plot_pareto(df: pd.DataFrame, quality: str, out: Path,
                throughput: str = schema.IMAGES_PER_SEC, lower_is_better: bool = True,
                at_epoch: int | str | None = "final") -> Path:
    """Every configuration's quality against throughput; the Pareto front highlighted."""
    points = (pareto_front(df, quality, throughput, lower_is_better, at_epoch, all_points=True)
              if len(df) else pd.DataFrame())
    if points.empty:
        raise NoDataError(f"no rows with both {quality} and {throughput}")
    fig, axes = _figure(1, 1, width=6.0, height=4.2)
    ax = axes[0][0]
    rest, front = points[~points["on_front"]], points[points["on_front"]]
    ax.scatter(rest[throughput], rest[quality], color="tab:grey", label="dominated")
    front = front.sort_values(throughput)
    ax.plot(front[throughput], front[quality], marker="o", color="tab:red", label="Pareto front",
            drawstyle="steps-post" if len(front) > 1 else "default")
    labelled = points if len(points) <= 16 else front
    for _, row in labelled.iterrows():
        ax.annotate(row["label"], (row[throughput], row[quality]), fontsize="x-small",
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"{throughput} (higher is better)")
    ax.set_ylabel(f"{quality} ({'lower' if lower_is_better else 'higher'} is better)")
    ax.set_title("quality against throughput")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out)


def plot_sample_mosaic(df: pd.DataFrame, out: Path, at_epoch: int | str | None = "final",
                       title: str | None = None) -> Path:
    """The sample grids side by side: rows models, columns upsampling.

    Each cell is the grid of the lowest seed for that model x upsampling in `df`
    (filter `df` first to fix the other design columns). A cell whose PNG is
    missing on disk says so instead of failing the figure.
    """
    data = select_rows(df, at_epoch, ok_only=True) if len(df) else df
    data = data[data[schema.SAMPLES_PNG].notna()] if schema.SAMPLES_PNG in data else data
    if data.empty:
        raise NoDataError("no sample grids")
    models = sorted(data[schema.MODEL].unique())
    variants = sorted(data[schema.UPSAMPLING].unique())
    chosen = data.sort_values([schema.SEED, schema.EPOCH], kind="stable").groupby(
        [schema.MODEL, schema.UPSAMPLING]).head(1).set_index([schema.MODEL, schema.UPSAMPLING])
    images: dict[tuple[str, str], np.ndarray | None] = {}
    for key, row in chosen.iterrows():
        path = sample_path(row)
        images[key] = _read_image(path) if path is not None else None
    sizes = [im.shape[:2] for im in images.values() if im is not None]
    h, w = np.max(sizes, axis=0) if sizes else (400, 400)
    cell_w = min(4.0, max(2.0, w / 120))
    cell_h = cell_w * h / w
    fig, axes = _figure(len(models), len(variants), width=cell_w, height=cell_h + 0.35)
    for i, model in enumerate(models):
        for j, variant in enumerate(variants):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            image = images.get((model, variant))
            if image is None:
                reason = "no run" if (model, variant) not in chosen.index else "PNG missing"
                ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255,
                          interpolation="antialiased")
            if i == 0:
                ax.set_title(variant)
            if j == 0:
                ax.set_ylabel(model, fontsize="large")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def _read_image(path: Path) -> np.ndarray | None:
    """uint8 grey (H, W) or RGB (H, W, 3); None when unreadable."""
    try:
        with Image.open(path) as im:
            grey = im.mode in ("1", "L", "LA", "I", "I;16")
            return np.asarray(im.convert("L" if grey else "RGB"))
    except (OSError, ValueError):
        return None


def _draw_floor(ax, data: pd.DataFrame, metric: str) -> None:
    """A dashed line at the metric's real-vs-real floor, one per dataset in the panel."""
    column = floor_column(metric)
    if column is None or column not in data or data[column].isna().all():
        return
    floors = data.groupby(schema.DATASET, dropna=False)[column].mean().dropna()
    for dataset, value in floors.items():
        name = FLOOR_LABEL if len(floors) == 1 else f"{FLOOR_LABEL} ({dataset})"
        ax.axhline(value, color="0.35", linestyle="--", linewidth=1, label=name)


def _facet_panels(data: pd.DataFrame, line_cols: Sequence[str], facet: str, width: float,
                  height: float) -> tuple[Figure, list[tuple[Any, Any, pd.DataFrame]], dict]:
    """A figure with one panel per `facet` value (one panel when `data` has no such
    column): (figure, [(axis, facet value, its rows with a `_line` label of
    `line_cols`)], a colour per line, the same in every panel)."""
    data = data.assign(_line=config_label(data, line_cols))
    facets = sorted(data[facet].dropna().unique()) if facet in data else [None]
    fig, axes = _figure(1, len(facets), width=width, height=height)
    panels = [(ax, value, data if value is None else data[data[facet] == value])
              for ax, value in zip(axes[0], facets, strict=True)]
    return fig, panels, _colors(sorted(data["_line"].unique()))


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Figure, list[list]]:
    fig = Figure(figsize=(width * cols, height * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, [list(r) for r in axes]


def _colors(names: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    return {n: palette[i % len(palette)] for i, n in enumerate(names)}


def _save(fig: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI)
    return out
