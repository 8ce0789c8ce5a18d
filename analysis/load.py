"""Load result rows from the results store into one pandas DataFrame.

    load_results("results/smoke", "results/seed-study")

Reads every `<sweep>/trials/<trial_id>/result.parquet` under the given sweep
directories (or results roots, or single result files), checks the schema,
and keeps one row per (trial_id, epoch): the newest by `timestamp`, so a trial
copied into two roots, or re-run, counts once. Files that cannot be read, or
that lack the columns analysis needs, are skipped with a warning naming them.

Besides the `suite.store.schema` columns the frame has one more, `TRIAL_DIR`
("trial_dir"): the absolute directory the row was read from. `samples_png` is
relative to it; `sample_path(row)` joins the two.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from suite.store import schema
from suite.store.results import read_parquet_once, result_files

# Not a schema column: where each row was read from (absolute trial directory).
TRIAL_DIR = "trial_dir"

# Without these a row cannot be identified, de-duplicated or placed on an epoch axis.
REQUIRED_COLUMNS: tuple[str, ...] = (
    schema.SCHEMA_VERSION_COL, schema.TRIAL_ID, schema.EPOCH, schema.EPOCHS, schema.STATUS,
)
SUPPORTED_SCHEMA_VERSIONS = frozenset({schema.SCHEMA_VERSION})

# pandas dtypes per logical schema type: nullable ints, so a null int stays an int column.
_PANDAS_DTYPES = {"str": "str", "int": "Int64", "float": "float64"}


class ResultsWarning(UserWarning):
    """A result file was skipped or looked suspicious (the message names it)."""


def empty_results() -> pd.DataFrame:
    """A frame with every schema column (typed) plus TRIAL_DIR and no rows."""
    columns = {c: pd.Series(dtype=_PANDAS_DTYPES[k]) for c, k in schema.COLUMN_TYPES.items()}
    columns[TRIAL_DIR] = pd.Series(dtype="str")
    return pd.DataFrame(columns)


def load_results(*paths: str | Path, deduplicate: bool = True) -> pd.DataFrame:
    """All result rows under `paths` (sweep dirs, results roots or result.parquet files).

    genbench's one reader of results (`genbench show`, `report`, analysis and the
    tests): one row per (trial, epoch), the newest; `deduplicate=False` keeps every
    row as written (for audits that count rows).

    Raises FileNotFoundError for a path that does not exist. Unreadable, partial
    or foreign-schema files are skipped with a `ResultsWarning` naming the file.
    Returns schema columns in schema order (nullable `Int64` for int columns),
    then TRIAL_DIR and any extra columns a newer writer added.
    """
    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"no such results path: {p}")
    files = _unique_files(result_files(*(Path(p) for p in paths)))
    frames = [f for f in (_read_file(path) for path in files) if f is not None]
    if not frames:
        return empty_results()
    df = pd.concat(frames, ignore_index=True)
    df = _conform(df)
    return _deduplicate(df) if deduplicate else df


def sample_path(row: Mapping[str, Any] | pd.Series) -> Path | None:
    """Absolute path of a row's sample grid PNG, or None when the row has none."""
    rel, base = row.get(schema.SAMPLES_PNG), row.get(TRIAL_DIR)
    if not isinstance(rel, str) or not rel or not isinstance(base, str) or not base:
        return None
    return Path(base) / rel


def _unique_files(files: list[Path]) -> list[Path]:
    """The same file reached through two given paths (root and sweep dir) is read once."""
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _warn(path: Path, problem: str) -> None:
    warnings.warn(f"skipping {path}: {problem}", ResultsWarning, stacklevel=3)


def _read_file(path: Path) -> pd.DataFrame | None:
    try:
        table = read_parquet_once(path)
    except Exception as exc:  # truncated, not parquet, unreadable: skip, the rest still loads
        _warn(path, f"unreadable parquet ({type(exc).__name__}: {exc})")
        return None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        _warn(path, f"partial file, missing required columns {missing}")
        return None
    df = table.to_pandas()
    versions = set(pd.unique(df[schema.SCHEMA_VERSION_COL].dropna()).tolist())
    unsupported = versions - SUPPORTED_SCHEMA_VERSIONS
    if unsupported:
        _warn(path, f"schema_version {sorted(unsupported)} not supported by this analysis "
                    f"(supports {sorted(SUPPORTED_SCHEMA_VERSIONS)})")
        return None
    if df[list(REQUIRED_COLUMNS)].isna().any().any():
        _warn(path, f"partial file, nulls in required columns {list(REQUIRED_COLUMNS)}")
        return None
    df[TRIAL_DIR] = str(path.resolve().parent)
    return df


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    """Every schema column present and typed; schema order first, extras after."""
    out = {}
    for col, kind in schema.COLUMN_TYPES.items():
        dtype = _PANDAS_DTYPES[kind]
        if col not in df:
            out[col] = pd.Series(pd.NA if kind == "int" else None, index=df.index, dtype=dtype)
            continue
        series = df[col]
        if kind == "int" and series.dtype.kind == "f":
            # all-null (or null-holding) int columns come back from arrow as float64
            series = series.round()
        out[col] = series.astype(dtype)
    extras = [c for c in df.columns if c not in schema.COLUMN_TYPES]
    result = pd.DataFrame(out, index=df.index)
    for c in extras:
        result[c] = df[c]
    return result


def _deduplicate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (trial_id, epoch): the newest timestamp wins (file order breaks ties)."""
    when = pd.to_datetime(df[schema.TIMESTAMP], utc=True, errors="coerce", format="ISO8601")
    order = pd.DataFrame({"when": when, "pos": range(len(df))}, index=df.index)
    order = order.sort_values(["when", "pos"], na_position="first", kind="stable")
    df = df.loc[order.index]
    df = df.drop_duplicates([schema.TRIAL_ID, schema.EPOCH], keep="last")
    return df.sort_values([schema.SWEEP, schema.TRIAL_INDEX, schema.TRIAL_ID, schema.EPOCH],
                          na_position="last", kind="stable").reset_index(drop=True)
