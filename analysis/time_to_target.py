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

from analysis.tables import DESIGN_COLUMNS, better_is_lower, config_label, varying_columns
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
    rows = []
    for trial_id, rows_of in data.groupby(schema.TRIAL_ID, sort=True):
        values = rows_of[metric].to_numpy(dtype="float64")
        hit = values <= target if lower else values >= target
        first = rows_of.iloc[int(np.argmax(hit))] if hit.any() else None
        last = rows_of.iloc[-1]
        out = {schema.TRIAL_ID: trial_id, **{c: last[c] for c in keys},
               REACHED: first is not None,
               schema.EPOCH: np.nan if first is None else float(first[schema.EPOCH]),
               metric: np.nan if first is None else float(first[metric])}
        for column in TIME_COLUMNS:
            out[column] = np.nan if first is None else _time_value(first, column)
        rows.append(out)
    columns = [schema.TRIAL_ID, *keys, REACHED, schema.EPOCH, metric, *TIME_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
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
    grouped = per_trial.groupby(by, dropna=False, sort=True)
    out = grouped.apply(_summarize, include_groups=False).reset_index()
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


def _summarize(rows: pd.DataFrame) -> pd.Series:
    got = rows[rows[REACHED]]
    return pd.Series({
        REACHED: f"{len(got)}/{len(rows)}",
        schema.TRAIN_TIME_S: got[schema.TRAIN_TIME_S].mean() if len(got) else np.nan,
        f"{schema.TRAIN_TIME_S}_std": got[schema.TRAIN_TIME_S].std(ddof=1)
        if len(got) > 1 else np.nan,
        IMAGES_SEEN: got[IMAGES_SEEN].mean() if len(got) else np.nan,
    })


def _time_value(row: pd.Series, column: str) -> float:
    if column == IMAGES_SEEN:
        steps, batch = row.get(schema.STEPS), row.get(schema.GLOBAL_BATCH_SIZE)
        if steps is None or batch is None or pd.isna(steps) or pd.isna(batch):
            return np.nan
        return float(steps) * float(batch)
    value = row.get(column)
    return np.nan if value is None or pd.isna(value) else float(value)
