"""Comparison tables: DataFrame of result rows in, DataFrame out.

Every function selects rows the same way first (`analysis.rows.select_rows`: the
final epoch by default, status-ok rows unless `ok_only=False`). Means and standard
deviations are over seeds (sample std, ddof=1: NaN with a single seed). Metric
columns that are all null are skipped, never an error: results written before the
metrics landed have none. The upsampling effect lives in `analysis.effects`, the
per-trial overview in `analysis.overview`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.effects import bootstrap_mean, upsampling_effect
from analysis.overview import trial_overview
from analysis.rows import (
    DESIGN_COLUMNS,
    LOWER_IS_BETTER,
    QUALITY_METRICS,
    SCALING_KEYS,
    available_metrics,
    better_is_lower,
    config_label,
    require_columns,
    select_rows,
    varying_columns,
)
from suite.store import schema

__all__ = [
    "DESIGN_COLUMNS", "LOWER_IS_BETTER", "QUALITY_METRICS", "SCALING_KEYS", "STATS",
    "available_metrics", "best_config", "better_is_lower", "bootstrap_mean", "compare",
    "config_label", "format_mean_std", "pareto_front", "scaling", "select_rows",
    "trial_overview", "upsampling_effect", "varying_columns",
]

STATS = ("mean", "std", "n")


def compare(df: pd.DataFrame, rows: Sequence[str], cols: Sequence[str] = (),
            metric: str = schema.IMAGES_PER_SEC, at_epoch: int | str | None = "final",
            ok_only: bool = True) -> pd.DataFrame:
    """Mean, std and n of `metric` over seeds, rows x cols.

    Index: the `rows` values. Columns: ("mean", "std", "n") without `cols`, else a
    MultiIndex (*cols values, stat). A combination with no data has mean/std NaN, n 0.
    """
    rows, cols = list(rows), list(cols)
    if not rows:
        raise ValueError("compare needs at least one row column")
    require_columns(df, rows + cols + [metric])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[metric].notna()]
    grouped = data.groupby(rows + cols, dropna=False, sort=True)[metric]
    stats = pd.DataFrame({"mean": grouped.mean().astype("float64"),
                          "std": grouped.std(ddof=1).astype("float64"),
                          "n": grouped.count()})
    if cols and stats.empty:
        empty_index = pd.MultiIndex.from_tuples([], names=rows) if len(rows) > 1 \
            else pd.Index([], name=rows[0])
        stats = pd.DataFrame(index=empty_index,
                             columns=pd.MultiIndex.from_tuples([], names=[*cols, "stat"]))
    elif cols:
        stats = stats.unstack(cols)  # columns: (stat, *cols)
        keys = list(dict.fromkeys(c[1:] for c in stats.columns))
        keys.sort(key=lambda k: tuple(str(v) for v in k))
        order = [(stat, *k) for k in keys for stat in STATS]
        stats = stats.reindex(columns=pd.MultiIndex.from_tuples(order))
        stats.columns = pd.MultiIndex.from_tuples([(*c[1:], c[0]) for c in stats.columns],
                                                  names=[*cols, "stat"])
        n_cols = [c for c in stats.columns if c[-1] == "n"]
        stats[n_cols] = stats[n_cols].fillna(0)
        for c in n_cols:
            stats[c] = stats[c].astype("int64")
    else:
        stats["n"] = stats["n"].astype("int64")
    stats.attrs.update(metric=metric, at_epoch=at_epoch)
    return stats


def format_mean_std(table: pd.DataFrame, mean_digits: int = 4, std_digits: int = 2,
                    missing: str = "") -> pd.DataFrame:
    """A `compare` table as "mean ± std" strings ("mean" alone for one seed)."""
    def cell(mean: Any, std: Any, n: Any) -> str:
        if pd.isna(mean) or (not pd.isna(n) and int(n) == 0):
            return missing
        text = f"{mean:.{mean_digits}g}"
        return text if pd.isna(std) else f"{text} ± {std:.{std_digits}g}"

    if not isinstance(table.columns, pd.MultiIndex):
        name = table.attrs.get("metric", "value")
        out = pd.DataFrame({name: [cell(m, s, n) for m, s, n in
                                   zip(table["mean"], table["std"], table["n"], strict=True)]},
                           index=table.index)
        return out
    keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    out = pd.DataFrame(index=table.index)
    for k in keys:
        label = " / ".join(str(v) for v in k)
        out[label] = [cell(m, s, n) for m, s, n in zip(
            table[(*k, "mean")], table[(*k, "std")], table[(*k, "n")], strict=True)]
    out.columns.name = " / ".join(str(n) for n in table.columns.names[:-1])
    return out


def best_config(df: pd.DataFrame, metric: str, by: str | Sequence[str] = schema.MODEL,
                lower_is_better: bool | None = None, at_epoch: int | str | None = "final",
                ok_only: bool = True) -> pd.DataFrame:
    """Per `by` value, the configuration (mean over seeds) with the best `metric`.

    Columns: by..., the design columns that vary, "mean", "std", "n" (seeds).
    """
    lower = better_is_lower(metric, lower_is_better)
    by = [by] if isinstance(by, str) else list(by)
    require_columns(df, by + [metric])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[metric].notna()]
    design = [c for c in DESIGN_COLUMNS if c in data and c not in by]
    grouped = data.groupby(by + design, dropna=False, sort=True)[metric]
    agg = pd.DataFrame({"mean": grouped.mean().astype("float64"),
                        "std": grouped.std(ddof=1).astype("float64"),
                        "n": grouped.count().astype("int64")}).reset_index()
    if agg.empty:
        out = pd.DataFrame(columns=[*by, "mean", "std", "n"])
    else:
        pick = agg.groupby(by, dropna=False, sort=True)["mean"]
        out = agg.loc[pick.idxmin() if lower else pick.idxmax()]
        keep = by + varying_columns(data, design) + list(STATS)
        out = out[keep].reset_index(drop=True)
    out.attrs.update(metric=metric, lower_is_better=lower, at_epoch=at_epoch)
    return out


def scaling(df: pd.DataFrame, by: Sequence[str] | None = None,
            at_epoch: int | str | None = "final", ok_only: bool = True) -> pd.DataFrame:
    """Throughput against workers: images/s (mean over seeds), speed-up and efficiency.

    speedup = images/s at w workers / images/s at 1 worker of the same group
    (NaN when the group has no 1-worker run); efficiency = speedup / w.
    Columns: by..., workers, images_per_sec, std, n, images_per_sec_per_worker,
    speedup, efficiency.
    """
    by = [c for c in (SCALING_KEYS if by is None else by) if c in df]
    require_columns(df, [schema.WORKERS, schema.IMAGES_PER_SEC])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[schema.IMAGES_PER_SEC].notna()]
    grouped = data.groupby(by + [schema.WORKERS], dropna=False, sort=True)[schema.IMAGES_PER_SEC]
    out = pd.DataFrame({schema.IMAGES_PER_SEC: grouped.mean().astype("float64"),
                        "std": grouped.std(ddof=1).astype("float64"),
                        "n": grouped.count().astype("int64")}).reset_index()
    workers = out[schema.WORKERS].astype("float64")
    out[schema.IMAGES_PER_SEC_PER_WORKER] = out[schema.IMAGES_PER_SEC] / workers
    single = out[workers == 1]
    if by:
        one = single[by + [schema.IMAGES_PER_SEC]].rename(
            columns={schema.IMAGES_PER_SEC: "_single"})
        out = out.merge(one, on=by, how="left")
    else:
        out["_single"] = single[schema.IMAGES_PER_SEC].iloc[0] if len(single) else np.nan
    out["speedup"] = out[schema.IMAGES_PER_SEC] / out["_single"]
    out["efficiency"] = out["speedup"] / out[schema.WORKERS].astype("float64")
    return out.drop(columns="_single")


def pareto_front(df: pd.DataFrame, quality: str, throughput: str = schema.IMAGES_PER_SEC,
                 lower_is_better: bool = True, at_epoch: int | str | None = "final",
                 ok_only: bool = True, all_points: bool = False) -> pd.DataFrame:
    """Configurations (mean over seeds) not beaten on both quality and throughput.

    A configuration is on the front when no other one is at least as good on both
    axes and better on one. Returns the front sorted by throughput (fastest first),
    or with `all_points=True` every configuration with an `on_front` column.
    Columns: label, the design columns that vary, quality, throughput, n, on_front.
    """
    require_columns(df, [quality, throughput])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[quality].notna() & data[throughput].notna()]
    design = [c for c in DESIGN_COLUMNS if c in data]
    grouped = data.groupby(design, dropna=False, sort=True)
    agg = grouped[[quality, throughput]].mean().astype("float64")
    agg["n"] = grouped[quality].count().astype("int64")
    agg = agg.reset_index()
    shown = varying_columns(agg, design)
    named = list(dict.fromkeys([c for c in (schema.MODEL, schema.UPSAMPLING) if c in agg] + shown))
    agg.insert(0, "label", config_label(agg, named))
    q = agg[quality].to_numpy() * (1.0 if lower_is_better else -1.0)  # smaller is better
    agg["on_front"] = non_dominated(q, agg[throughput].to_numpy())
    agg = agg[["label", *shown, quality, throughput, "n", "on_front"]]
    agg = agg.sort_values([throughput, quality], ascending=[False, lower_is_better],
                          kind="stable").reset_index(drop=True)
    agg.attrs.update(quality=quality, throughput=throughput, lower_is_better=lower_is_better)
    return agg if all_points else agg[agg["on_front"]].reset_index(drop=True)


def non_dominated(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Which points no other point beats: none at least as good on both (q smaller, t
    larger) and better on one. Sorting by t makes it O(n log n), so thousands of
    configurations need no n x n matrix."""
    q, t = np.asarray(q, dtype="float64"), np.asarray(t, dtype="float64")
    if q.size == 0:
        return np.zeros(0, dtype=bool)
    levels, level = np.unique(-t, return_inverse=True)  # level 0: the fastest
    best_in_level = np.full(levels.size, np.inf)
    np.minimum.at(best_in_level, level, q)
    # the best q among strictly faster points
    faster = np.r_[np.inf, np.minimum.accumulate(best_in_level)[:-1]]
    return (q < faster[level]) & (q <= best_in_level[level])
