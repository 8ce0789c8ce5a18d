"""Time to quality, as MLPerf measures training: how long until a trial first reaches a target.

Per trial, the first milestone (in epoch order) whose `metric` reaches `target`
(<= for lower-is-better metrics, >= otherwise) gives the training seconds and
images seen up to then. `train_time_s` in the rows is already cumulative over
milestones (the throughput clock sums every timed call since the trial
started and survives resumes, warm-up included; evaluation excluded), so it is
read as is; images seen = `steps` (cumulative) x `global_batch_size`. A trial
that never reaches the target gets NaN: it is a result ("did not get there"),
not a zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.rows import DESIGN_COLUMNS, better_is_lower, config_label, varying_columns
from suite.store import schema

IMAGES_SEEN = "images_seen"
REACHED = "reached"
TIME_COLUMNS = (schema.TRAIN_TIME_S, IMAGES_SEEN, schema.WALL_TIME_S)


def time_to_target(df: pd.DataFrame, metric: str, target: float,
                   lower_is_better: bool | None = None, ok_only: bool = True) -> pd.DataFrame:
    """One row per trial: when it first reached `target` on `metric`.

    Columns: trial_id, the design columns and seed, "reached" (bool), "epoch" (the
    milestone, NaN if never), metric (its value there), train_time_s (cumulative
    training seconds), images_seen (steps x global batch size), wall_time_s (cumulative
    epoch wall time, evaluation excluded; NaN where the rows lack it). Trials without a
    single value of `metric` are left out. `attrs`: metric, target, lower_is_better.
    """
    lower = better_is_lower(metric, lower_is_better)
    missing = [c for c in (schema.TRIAL_ID, schema.EPOCH, metric) if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
    data = df
    if ok_only and schema.STATUS in data:
        data = data[data[schema.STATUS] == schema.STATUS_OK]
    data = data[data[metric].notna()].sort_values([schema.TRIAL_ID, schema.EPOCH],
                                                  kind="stable")
    data = data.drop_duplicates([schema.TRIAL_ID, schema.EPOCH], keep="last")
    keys = [c for c in (schema.SWEEP, *DESIGN_COLUMNS, schema.SEED) if c in data]
    # vectorized over trials (thousands of them): each trial's last row names it, its
    # first row that reaches the target times it
    values = data[metric].to_numpy(dtype="float64")
    data = data.assign(_hit=values <= target if lower else values >= target)
    last = data.groupby(schema.TRIAL_ID, sort=True).tail(1).set_index(schema.TRIAL_ID)
    first = data[data["_hit"]].groupby(schema.TRIAL_ID, sort=True).head(1) \
        .set_index(schema.TRIAL_ID).reindex(last.index)
    reached = first[schema.EPOCH].notna()
    table = last[keys].copy()
    table[REACHED] = reached.to_numpy()
    table[schema.EPOCH] = first[schema.EPOCH].astype("float64")
    table[metric] = first[metric].astype("float64")
    for column in TIME_COLUMNS:
        table[column] = _time_values(first, column)
    columns = [schema.TRIAL_ID, *keys, REACHED, schema.EPOCH, metric, *TIME_COLUMNS]
    table = table.reset_index()[columns]
    table[REACHED] = table[REACHED].astype(bool)
    table.attrs.update(metric=metric, target=float(target), lower_is_better=lower)
    return table


def time_to_target_table(df: pd.DataFrame, metric: str, target: float,
                         by: Sequence[str] | None = None,
                         lower_is_better: bool | None = None) -> pd.DataFrame:
    """`time_to_target` per configuration (variant), over seeds.

    `by`: the columns naming a configuration (default: model, upsampling and every
    design column that varies). Columns: by..., "reached" ("k/n" trials), train_time_s
    and images_seen as the mean over the trials that reached the target (NaN when none
    did), train_time_s_std. A configuration where only some seeds got there shows their
    mean and says so in "reached".
    """
    per_trial = time_to_target(df, metric, target, lower_is_better)
    if by is None:
        by = list(dict.fromkeys([schema.MODEL, schema.UPSAMPLING,
                                 *varying_columns(per_trial, DESIGN_COLUMNS)]))
    by = [c for c in by if c in per_trial]
    if per_trial.empty or not by:
        out = pd.DataFrame(columns=[*by, REACHED, schema.TRAIN_TIME_S,
                                    f"{schema.TRAIN_TIME_S}_std", IMAGES_SEEN])
        out.attrs.update(per_trial.attrs)
        return out
    got = per_trial[by].copy()
    for column in (schema.TRAIN_TIME_S, IMAGES_SEEN):  # only trials that reached it count
        got[column] = per_trial[column].where(per_trial[REACHED])
    grouped = got.groupby(by, dropna=False, sort=True)
    n = per_trial.groupby(by, dropna=False, sort=True).size()
    k = per_trial[REACHED].astype("int64").groupby(
        [per_trial[c] for c in by], dropna=False, sort=True).sum()
    out = pd.DataFrame({
        REACHED: [f"{a}/{b}" for a, b in zip(k, n, strict=True)],
        schema.TRAIN_TIME_S: grouped[schema.TRAIN_TIME_S].mean(),
        f"{schema.TRAIN_TIME_S}_std": grouped[schema.TRAIN_TIME_S].std(ddof=1),
        IMAGES_SEEN: grouped[IMAGES_SEEN].mean()}, index=n.index).reset_index()
    out.attrs.update(per_trial.attrs)
    return out


def default_target(df: pd.DataFrame, metric: str,
                   lower_is_better: bool | None = None) -> float:
    """A target worth timing when the user names none: the median over trials of each
    trial's best value of `metric`, so about half the trials reach it and the table
    separates fast from slow from never. NaN without values."""
    lower = better_is_lower(metric, lower_is_better)
    data = df
    if schema.STATUS in data:
        data = data[data[schema.STATUS] == schema.STATUS_OK]
    data = data[data[metric].notna()] if metric in data else data.iloc[0:0]
    if data.empty:
        return float("nan")
    best = data.groupby(schema.TRIAL_ID)[metric]
    return float((best.min() if lower else best.max()).median())


def label_trials(table: pd.DataFrame) -> pd.Series:
    """Readable configuration names for the rows of a `time_to_target` table."""
    return config_label(table, [c for c in (schema.MODEL, schema.UPSAMPLING) if c in table]
                        + [c for c in varying_columns(table, DESIGN_COLUMNS)
                           if c not in (schema.MODEL, schema.UPSAMPLING)])


def _time_values(rows: pd.DataFrame, column: str) -> pd.Series:
    """The time column of each row as floats (NaN where the rows lack it)."""
    if column == IMAGES_SEEN:
        if schema.STEPS not in rows or schema.GLOBAL_BATCH_SIZE not in rows:
            return pd.Series(np.nan, index=rows.index)
        return (rows[schema.STEPS].astype("float64")
                * rows[schema.GLOBAL_BATCH_SIZE].astype("float64"))
    if column not in rows:
        return pd.Series(np.nan, index=rows.index)
    return rows[column].astype("float64")
