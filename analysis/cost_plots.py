"""Figures of what quality costs: quality against training seconds, and quality and
throughput against model size. Same conventions as `analysis.plots` (one PNG per call,
Agg canvas, `NoDataError` when there is nothing to draw)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.plots import NoDataError, _colors, _draw_floor, _facet_panels, _figure, _save
from analysis.rows import DESIGN_COLUMNS, config_label, select_rows, varying_columns
from suite.store import schema


def plot_metric_vs_time(df: pd.DataFrame, metric: str, out: Path, facet: str = schema.DATASET,
                        target: float | None = None, ok_only: bool = True,
                        lines: list[str] | None = None) -> Path:
    """`metric` against cumulative training seconds (`train_time_s`) at each milestone:
    one panel per `facet` value, one line per configuration (mean over seeds of both
    axes; `lines`: the columns naming a line, default every one that varies), a dotted
    line at `target` when given."""
    data = select_rows(df, None, ok_only) if len(df) else df
    needed = [metric, schema.TRAIN_TIME_S]
    if not all(c in data for c in needed):
        raise NoDataError(f"no values of {metric} with {schema.TRAIN_TIME_S}")
    data = data[data[metric].notna() & data[schema.TRAIN_TIME_S].notna()]
    if data.empty:
        raise NoDataError(f"no values of {metric} with {schema.TRAIN_TIME_S}")
    line_cols = _line_columns(data, facet) if lines is None \
        else [c for c in lines if c in data and c != facet]
    fig, panels, colors = _facet_panels(data, line_cols, facet, width=4.6, height=3.4)
    for ax, value, sub in panels:
        for line, rows in sub.groupby("_line", sort=True):
            stats = rows.groupby(schema.EPOCH)[[schema.TRAIN_TIME_S, metric]].mean()
            stats = stats.sort_index()
            ax.plot(stats[schema.TRAIN_TIME_S], stats[metric], marker="o",
                    color=colors[line], label=line)
        _draw_floor(ax, sub, metric)
        if target is not None and np.isfinite(target):
            ax.axhline(target, color="tab:red", linestyle=":", linewidth=1, label="target")
        ax.set_title(str(value) if value is not None else metric)
        ax.set_xlabel("training seconds (cumulative)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save(fig, out)


def plot_against_params(df: pd.DataFrame, metrics: list[str], out: Path,
                        at_epoch: int | str | None = "final") -> Path:
    """Each of `metrics` (e.g. a quality metric and images/s) against the model's
    parameter count (`params_total`, log axis), one panel per metric, one line per
    model x upsampling (points: the sizes swept by depth/width; mean over seeds)."""
    data = select_rows(df, at_epoch, ok_only=True) if len(df) else df
    metrics = [m for m in metrics if m in data and data[m].notna().any()]
    if schema.PARAMS_TOTAL not in data or data[schema.PARAMS_TOTAL].isna().all() or not metrics:
        raise NoDataError(f"no {schema.PARAMS_TOTAL} with values of the metrics")
    data = data[data[schema.PARAMS_TOTAL].notna()]
    line_cols = [c for c in (schema.DATASET, schema.MODEL, schema.UPSAMPLING)
                 if c in data and (c != schema.DATASET or data[c].nunique() > 1)]
    data = data.assign(_line=config_label(data, line_cols))
    colors = _colors(sorted(data["_line"].unique()))
    fig, axes = _figure(1, len(metrics), width=4.6, height=3.4)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for line, rows in data[data[metric].notna()].groupby("_line", sort=True):
            stats = rows.groupby(schema.PARAMS_TOTAL)[metric].mean().sort_index()
            ax.plot(stats.index.to_numpy(dtype="float64"), stats.to_numpy(), marker="o",
                    color=colors[line], label=line)
        ax.set_xscale("log")
        ax.set_xlabel("parameters (total)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} against model size")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return _save(fig, out)


def size_table(df: pd.DataFrame, metrics: list[str],
               at_epoch: int | str | None = "final") -> pd.DataFrame:
    """Per model, upsampling and size (depth, width where present): parameter count and the
    mean over seeds of each metric, sorted by size within each variant."""
    data = select_rows(df, at_epoch, ok_only=True) if len(df) else df
    if schema.PARAMS_TOTAL not in data or data[schema.PARAMS_TOTAL].isna().all():
        return pd.DataFrame()
    data = data[data[schema.PARAMS_TOTAL].notna()]
    keys = [c for c in (schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.DEPTH,
                        schema.WIDTH) if c in data and data[c].notna().any()]
    if schema.DATASET in keys and data[schema.DATASET].nunique() < 2:
        keys.remove(schema.DATASET)
    metrics = [m for m in metrics if m in data and data[m].notna().any()]
    grouped = data.groupby([*keys, schema.PARAMS_TOTAL], dropna=False, sort=True)
    table = grouped[metrics].mean() if metrics else grouped.size().to_frame("n").iloc[:, :0]
    table["n"] = grouped.size()
    table = table.reset_index()
    order = [c for c in (schema.DATASET, schema.MODEL, schema.UPSAMPLING) if c in keys]
    return table.sort_values([*order, schema.PARAMS_TOTAL], kind="stable").reset_index(drop=True)


def _line_columns(data: pd.DataFrame, facet: str) -> list[str]:
    cols = [c for c in varying_columns(data, DESIGN_COLUMNS) if c != facet]
    for c in (schema.UPSAMPLING, schema.MODEL):
        if c in data and c not in cols and c != facet:
            cols.insert(0, c)
    return cols
