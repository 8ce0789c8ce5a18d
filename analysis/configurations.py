"""Configurations of a big sweep: every combination of the varying axes but the seed,
with its trial counts and each metric's mean and t-interval across seeds, and the best
and worst few per model that the aggregated report shows samples of."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.intervals import t_interval
from analysis.rows import (
    DESIGN_COLUMNS,
    better_is_lower,
    config_label,
    select_rows,
    varying_columns,
)
from suite.store import schema

LABEL = "configuration"
RANK = "rank"


def configuration_keys(df: pd.DataFrame) -> list[str]:
    """The axes that name a configuration: model and upsampling, then every other design
    column that varies (the seed never: it is what the intervals are taken across)."""
    present = [c for c in (schema.MODEL, schema.UPSAMPLING) if c in df]
    return list(dict.fromkeys([*present, *varying_columns(df, DESIGN_COLUMNS)]))


def configuration_table(df: pd.DataFrame, overview: pd.DataFrame, keys: Sequence[str],
                        metrics: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration: `trials` (every trial), `ok` (status ok), and per
    metric its mean at the final epoch over seeds, `<metric>_ci_low`, `<metric>_ci_high`
    (the t-interval; NaN with one seed), `<metric>_std` and `<metric>_n`."""
    keys = [k for k in keys if k in overview]
    counts = overview.groupby(keys, dropna=False, sort=True)[schema.STATUS].agg(
        trials="size", ok=lambda s: int((s == schema.STATUS_OK).sum()))
    final = select_rows(df, "final")
    for metric in metrics:
        data = final[final[metric].notna()] if metric in final else final.iloc[0:0]
        grouped = data.groupby(keys, dropna=False, sort=True)[metric]
        mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
        low, high = t_interval(mean, std, n, confidence)
        counts = counts.join(pd.DataFrame({
            metric: mean.astype("float64"), f"{metric}_ci_low": low, f"{metric}_ci_high": high,
            f"{metric}_std": std.astype("float64"), f"{metric}_n": n}, index=mean.index),
            how="left")
        counts[f"{metric}_n"] = counts[f"{metric}_n"].fillna(0).astype("int64")
    out = counts.reset_index()
    out.insert(0, LABEL, config_label(out, keys))
    return out


def extreme_configurations(table: pd.DataFrame, metric: str, k: int,
                           by: str = schema.MODEL) -> pd.DataFrame:
    """Per `by` value, the `k` best and the `k` worst configurations of a
    `configuration_table` by the mean of `metric` (fewer when a model has fewer than 2k
    configurations with values: each is shown once). Adds a "rank" column: "best 1",
    ..., "worst 1" (the worst last)."""
    lower = better_is_lower(metric)
    picked = []
    data = table[table[metric].notna()]
    for _, rows in data.groupby(by, sort=True) if by in data else [(None, data)]:
        ordered = rows.sort_values([metric, LABEL], ascending=[lower, True], kind="stable")
        best = ordered.head(k)
        worst = ordered.iloc[len(best):].tail(k)  # best first ... worst last
        ranks = [f"best {i + 1}" for i in range(len(best))] \
            + [f"worst {i}" for i in range(len(worst), 0, -1)]
        picked.append(pd.concat([best, worst]).assign(**{RANK: ranks}))
    if not picked:
        return table.iloc[0:0].assign(**{RANK: []})
    return pd.concat(picked, ignore_index=True)


def representative_rows(df: pd.DataFrame, chosen: pd.DataFrame,
                        keys: Sequence[str]) -> pd.DataFrame:
    """For each chosen configuration, the final-epoch row of its lowest seed (the trial
    whose samples the report shows), in the order of `chosen`."""
    keys = [k for k in keys if k in df and k in chosen]
    final = select_rows(df, "final").sort_values([schema.SEED, schema.TRIAL_ID], kind="stable")
    first = final.drop_duplicates(keys)
    return chosen[[*keys, LABEL, RANK]].merge(first, on=keys, how="inner", sort=False)
