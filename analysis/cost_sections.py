"""Report sections added by issue 13: time to a quality target (MLPerf's measure of
training), quality and throughput against model size, and each trial's samples across
milestones as an animated GIF. `analysis.report` adds them."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd

from analysis import cost_plots
from analysis.document import Image, Section, Table, Text, add_plot, slug
from analysis.load import sample_path
from analysis.tables import (
    DESIGN_COLUMNS,
    better_is_lower,
    config_label,
    select_rows,
    varying_columns,
)
from analysis.time_to_target import IMAGES_SEEN, default_target, time_to_target_table
from suite.artifacts.samples import GIF_NAME
from suite.store import schema


def time_section(df: pd.DataFrame, quality: list[str], fig_dir: Path) -> Section:
    """Per dataset: a target on the primary quality metric, the seconds and images each
    variant needs to reach it, and the metric against training seconds."""
    section = Section("Time to quality")
    if not quality:
        return section.add(Text("No quality metric, so no time to a quality target."))
    metric = quality[0]
    lower = better_is_lower(metric)
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
        section.add(Table(_format(table), f"{dataset}: time to `{metric}` "
                                          f"{'≤' if lower else '≥'} {target:.4g}"))
        add_plot(section, lambda s=sub, d=dataset, t=target: cost_plots.plot_metric_vs_time(
            s, metric, fig_dir / f"time_{slug(d)}_{metric}.png", target=t),
            f"{dataset}: `{metric}` against training seconds (dotted: the target)")
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


MAX_GIFS = 16


def gifs_section(df: pd.DataFrame, fig_dir: Path) -> Section:
    """Each configuration's samples across milestones, as the animated GIF its trial wrote
    beside its PNG grids (lowest seed; at most MAX_GIFS)."""
    section = Section("Samples across milestones")
    final = select_rows(df, "final")
    if schema.SAMPLES_PNG in final:
        final = final[final[schema.SAMPLES_PNG].notna()]
    if final.empty:
        return section.add(Text("No sample grids at the final epoch."))
    final = final.sort_values([schema.SEED, schema.TRIAL_ID], kind="stable")
    keys = list(dict.fromkeys([schema.MODEL, schema.UPSAMPLING,
                               *varying_columns(final, DESIGN_COLUMNS)]))
    chosen = final.drop_duplicates(keys).assign(_label=lambda d: config_label(d, keys))
    chosen = chosen.sort_values("_label", kind="stable")
    section.add(Text(f"Each trial's sample grids from its first milestone to its last "
                     f"(`samples/{GIF_NAME}` in its trial directory; fixed noise, lowest seed)."))
    missing = []
    for _, row in chosen.head(MAX_GIFS).iterrows():
        png = sample_path(row)
        gif = png.parent / GIF_NAME if png is not None else None
        if gif is None or not gif.is_file():
            missing.append(row["_label"])
            continue
        copy = fig_dir / f"samples_{slug(row[schema.TRIAL_ID])}.gif"
        shutil.copyfile(gif, copy)
        section.add(Image(copy, f"{row['_label']} (trial `{row[schema.TRIAL_ID]}`)"))
    if missing:
        section.add(Text("No GIF (trials written before GIFs were made): "
                         + ", ".join(missing) + "."))
    if len(chosen) > MAX_GIFS:
        section.add(Text(f"{len(chosen) - MAX_GIFS} more configurations not shown "
                         f"(at most {MAX_GIFS} GIFs)."))
    return section
