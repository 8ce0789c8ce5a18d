"""Noise floors beside the quality numbers: real-vs-real values, and who is within them.

Every evaluation row carries, next to a backbone's FD, KID, precision, recall,
density and coverage, the same score between two disjoint real subsets of the
eval split (`<metric>_floor`, n_floor images each): what a perfect generator
would get. A distance (FD, KID) within its floor cannot be told from real data by
that backbone at that n; a number far from it can.

"Within" is `metric <= |floor| + spread` (`floor_threshold`). FD's floor is positive
(its bias at n), so that is "at or below the floor". KID is unbiased: real against
real it is zero plus noise, often negative (-0.2 at n=1000 on MNIST's domain
backbone), and "below a negative floor" could never be met; the floor's magnitude is
how far from zero that noise lands, so |floor| is the noise band, widened by the
metric's own spread where the row has one (`<metric>_std`, KID's std over subsets).
Pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.rows import better_is_lower, select_rows
from suite.store import schema

FLOOR_SUFFIX = "_floor"
FLOOR_LABEL = "real-vs-real floor"
THRESHOLD_LABEL = "within if <="
SPREAD_SUFFIX = "_std"


def floor_column(metric: str) -> str | None:
    """`<metric>_floor` when the schema has one (FD, KID, precision, ... of a backbone)."""
    column = metric + FLOOR_SUFFIX
    return column if column in schema.COLUMN_TYPES else None


def floored_metrics(df: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The metrics (in order) whose floor has a value in `df`."""
    return [m for m in metrics if (f := floor_column(m)) and f in df and df[f].notna().any()]


def floor_by_row(df: pd.DataFrame, rows: Sequence[str], metric: str,
                 at_epoch: int | str | None = "final") -> pd.Series:
    """The floor of `metric` per `rows` group (mean over the group's rows: the floor is
    one number per dataset, split, backbone and n, so the mean is that number)."""
    column = floor_column(metric)
    if column is None or column not in df:
        return pd.Series(dtype="float64")
    data = select_rows(df, at_epoch)
    data = data[data[metric].notna() & data[column].notna()]
    return data.groupby(list(rows), dropna=False, sort=True)[column].mean().astype("float64")


def with_floor_column(formatted: pd.DataFrame, floors: pd.Series,
                      digits: int = 4) -> pd.DataFrame:
    """A formatted `compare` table with the floor as its last column (blank where none)."""
    out = formatted.copy()
    aligned = floors.reindex(out.index)
    out[FLOOR_LABEL] = ["" if pd.isna(v) else f"{v:.{digits}g}" for v in aligned]
    return out


def floor_table(df: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per dataset, eval split and n_floor: each metric's floor there."""
    floored = floored_metrics(df, metrics)
    keys = [c for c in (schema.DATASET, schema.EVAL_SPLIT, schema.N_FLOOR) if c in df]
    if not floored or not keys:
        return pd.DataFrame()
    data = select_rows(df, None)
    columns = [floor_column(m) for m in floored]
    data = data[data[columns].notna().any(axis=1)]
    if data.empty:
        return pd.DataFrame()
    table = data.groupby(keys, dropna=False, sort=True)[columns].mean().reset_index()
    if schema.N_FLOOR in table:
        table[schema.N_FLOOR] = table[schema.N_FLOOR].astype("Int64")
    return table


def floor_threshold(floor: pd.Series, spread: pd.Series | None = None) -> pd.Series:
    """The largest value of a distance still within its floor: |floor| + spread (see the
    module docstring); a missing spread counts as none."""
    threshold = floor.abs()
    return threshold if spread is None else threshold + spread.fillna(0.0)


def within_floor(df: pd.DataFrame, metric: str, rows: Sequence[str],
                 at_epoch: int | str | None = "final") -> pd.DataFrame:
    """Configurations (mean over seeds) whose distance `metric` is within its floor.

    Only for distances (lower is better: FD, KID), where "within the floor" means "as
    close to the real data as other real data is". Columns: rows..., metric, floor,
    threshold (`floor_threshold`), n (seeds).
    """
    column = floor_column(metric)
    keys = list(dict.fromkeys([*rows, schema.UPSAMPLING]))
    if column is None or column not in df or not better_is_lower(metric):
        return pd.DataFrame(columns=[*keys, metric, FLOOR_LABEL, THRESHOLD_LABEL, "n"])
    data = select_rows(df, at_epoch)
    data = data[data[metric].notna() & data[column].notna()]
    keys = [k for k in keys if k in data]
    grouped = data.groupby(keys, dropna=False, sort=True)
    spread_column = metric + SPREAD_SUFFIX
    spread = grouped[spread_column].mean() if spread_column in data else None
    floor = grouped[column].mean()
    table = pd.DataFrame({metric: grouped[metric].mean(), FLOOR_LABEL: floor,
                          THRESHOLD_LABEL: floor_threshold(floor, spread),
                          "n": grouped[metric].count()}).reset_index()
    return table[table[metric] <= table[THRESHOLD_LABEL]].reset_index(drop=True)


def within_floor_sentence(df: pd.DataFrame, metric: str, rows: Sequence[str]) -> str | None:
    """The report's statement about `metric`'s floor, or None when it has no floor."""
    if not floored_metrics(df, [metric]) or not better_is_lower(metric):
        return None
    inside = within_floor(df, metric, rows)
    n_floor = _n_floor_text(df)
    if inside.empty:
        return (f"No configuration's `{metric}` is within its {FLOOR_LABEL}{n_floor} "
                f"({RULE}): every model is still distinguishable from real data by this "
                "backbone.")
    keys = [c for c in inside.columns if c not in (metric, FLOOR_LABEL, THRESHOLD_LABEL, "n")]
    names = [" ".join(str(v) for v in row) for row in inside[keys].itertuples(index=False)]
    return (f"Within the {FLOOR_LABEL}{n_floor} on `{metric}` ({RULE}), so "
            "indistinguishable from real data by this backbone at that n: "
            + ", ".join(names) + ".")


RULE = "value <= |floor| + its std over subsets where it has one"


def _n_floor_text(df: pd.DataFrame) -> str:
    if schema.N_FLOOR not in df:
        return ""
    values = sorted({int(v) for v in df[schema.N_FLOOR].dropna()})
    return f" (n={', '.join(map(str, values))} per side)" if values else ""
