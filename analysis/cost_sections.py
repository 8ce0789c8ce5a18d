"""Report sections on what quality costs: time to a quality target (MLPerf's measure of
training), and quality and throughput against model size. `analysis.report` adds them."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis import cost_plots
from analysis.document import Section, Table, Text, add_plot, slug
from analysis.layout import Place
from analysis.rows import better_is_lower
from analysis.sections import add_table
from analysis.time_to_target import IMAGES_SEEN, default_target, time_to_target_table
from suite.store import schema


def time_section(df: pd.DataFrame, quality: list[str], place: Place) -> Section:
    """Per dataset: a target on the primary quality metric, the seconds and images each
    variant needs to reach it, and the metric against training seconds (aggregated: one
    line per model and upsampling)."""
    section = Section("Time to quality")
    if not quality:
        return section.add(Text("No quality metric, so no time to a quality target."))
    metric = quality[0]
    lower = better_is_lower(metric)
    lines = [schema.MODEL, schema.UPSAMPLING] if place.layout.aggregate else None
    section.add(Text(
        f"As MLPerf measures training: per trial, the cumulative training seconds "
        f"(`{schema.TRAIN_TIME_S}`: timed training calls, compilation included, evaluation "
        f"excluded) and images seen (steps x global batch) until the first milestone whose "
        f"`{metric}` is {'at or below' if lower else 'at or above'} the target. The target "
        "per dataset is the median over trials of each trial's best value (so about half "
        "get there); `analysis.time_to_target(df, metric, target)` takes any other. "
        "Means over the seeds that reached it; blank: none did."))
    for dataset in sorted(df[schema.DATASET].dropna().unique()):
        sub = df[df[schema.DATASET] == dataset]
        target = default_target(sub, metric, lower)
        if math.isnan(target):
            section.add(Text(f"{dataset}: no values of `{metric}`."))
            continue
        table = time_to_target_table(sub, metric, target, lower_is_better=lower)
        add_table(section, _format(table), f"{dataset}: time to `{metric}` "
                  f"{'≤' if lower else '≥'} {target:.4g}", place, f"time_{dataset}")
        add_plot(section, lambda s=sub, d=dataset, t=target: cost_plots.plot_metric_vs_time(
            s, metric, place.figures / f"time_{slug(d)}_{metric}.png", target=t,
            lines=lines), f"{dataset}: `{metric}` against training seconds (dotted: the target)")
    return section


def size_section(df: pd.DataFrame, quality: list[str], fig_dir: Path) -> Section:
    """Quality and throughput against parameter count, per model and upsampling."""
    section = Section("Model size")
    metrics = [*quality[:1], schema.IMAGES_PER_SEC]
    table = cost_plots.size_table(df, metrics)
    if table.empty:
        return section.add(Text(f"No `{schema.PARAMS_TOTAL}` in these results (rows written "
                                "before parameter counts were recorded)."))
    section.add(Table(table, "Final epoch, mean over seeds, per variant and size "
                             "(`depth`, `width`)"))
    add_plot(section, lambda: cost_plots.plot_against_params(
        df, metrics, fig_dir / "model_size.png"),
        "Quality and throughput against parameter count (log axis), per model and upsampling")
    return section


def _format(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for column in (schema.TRAIN_TIME_S, f"{schema.TRAIN_TIME_S}_std"):
        out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    out[IMAGES_SEEN] = out[IMAGES_SEEN].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    return out
