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

Fast at thousands of trials: a sweep of 100+ files keeps its rows in a cache
checked against every file's identity (suite.store.row_cache); the other files
are read by a pool of threads (pyarrow decodes without the GIL), each through ONE
open handle (a run may rewrite a file by rename meanwhile), checked as arrow
tables, joined into one table and converted to pandas once.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from suite.store import schema
from suite.store.results import read_parquet_signed, result_files
from suite.store.row_cache import CACHE_MIN_FILES, cache_dir_of, read_cache, write_cache

# Not a schema column: where each row was read from (absolute trial directory).
TRIAL_DIR = "trial_dir"

# Without these a row cannot be identified, de-duplicated or placed on an epoch axis.
REQUIRED_COLUMNS: tuple[str, ...] = (
    schema.SCHEMA_VERSION_COL, schema.TRIAL_ID, schema.EPOCH, schema.EPOCHS, schema.STATUS,
)
SUPPORTED_SCHEMA_VERSIONS = frozenset({schema.SCHEMA_VERSION})

# pandas dtypes per logical schema type: nullable ints, so a null int stays an int column.
_PANDAS_DTYPES = {"str": "str", "int": "Int64", "float": "float64", "bool": "boolean"}
# A flag column missing from older files is its option off: rows from before it existed.
_MISSING = {"int": pd.NA, "bool": False}


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
    tables = [(path, t) for path, t in zip(files, read_tables(files), strict=True)
              if t is not None]
    if not tables:
        return empty_results()
    df = _tables_to_frame(tables)
    df = _conform(df)
    return _deduplicate(df) if deduplicate else df


def read_tables(files: Sequence[Path], threads: int | None = None) -> list[pa.Table | None]:
    """Each file's checked arrow table, or None (with a ResultsWarning naming it), in
    file order. Sweeps of many files keep their rows in a cache checked against every
    file's identity (suite.store.row_cache); the rest are read by `threads` threads
    (default: 4 per core, at most 32)."""
    sizes = Counter(cache_dir_of(f) for f in files)
    cached_dirs = {d for d, n in sizes.items() if d is not None and n >= CACHE_MIN_FILES}
    caches = {d: read_cache(d) for d in cached_dirs}
    read: list[tuple[pa.Table | None, str, Any]] = [(None, "", None)] * len(files)
    todo = []
    for i, f in enumerate(files):
        d = cache_dir_of(f)
        hit = caches[d].get(str(f.relative_to(d))) if d in caches else None
        if hit is not None and hit[0] == _identity(f):
            read[i] = (hit[1], "", hit[0])
        else:
            todo.append(i)
    threads = threads or min(32, 4 * (os.cpu_count() or 1))
    if len(todo) < 2 or threads < 2:
        fresh = [_read_checked(files[i]) for i in todo]
    else:
        with ThreadPoolExecutor(threads) as pool:
            fresh = list(pool.map(_read_checked, [files[i] for i in todo]))
    for i, result in zip(todo, fresh, strict=True):
        read[i] = result
    for path, (_, problem, _) in zip(files, read, strict=True):
        if problem:
            _warn(path, problem)  # here, in the caller's thread and file order
    changed = {cache_dir_of(files[i]) for i in todo} | {
        d for d in caches if set(caches[d]) - {str(f.relative_to(d)) for f in files
                                              if cache_dir_of(f) == d}}
    for d in cached_dirs & changed:
        write_cache(d, [(str(f.relative_to(d)), ident, table)
                        for f, (table, _, ident) in zip(files, read, strict=True)
                        if table is not None and cache_dir_of(f) == d])
    return [table for table, _, _ in read]


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_checked(path: Path) -> tuple[pa.Table | None, str, Any]:
    """(table, "", identity) or (None, why it is skipped, None): the checks of a file."""
    try:
        table, identity = read_parquet_signed(path)
    except Exception as exc:  # truncated, not parquet, unreadable: skip, the rest still loads
        return None, f"unreadable parquet ({type(exc).__name__}: {exc})", None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        return None, f"partial file, missing required columns {missing}", None
    try:
        versions = set(pc.unique(table[schema.SCHEMA_VERSION_COL].drop_null()).to_pylist())
    except pa.ArrowException as exc:
        return None, f"unreadable schema_version ({exc})", None
    unsupported = versions - SUPPORTED_SCHEMA_VERSIONS
    if unsupported:
        return None, (f"schema_version {sorted(unsupported)} not supported by this analysis "
                      f"(supports {sorted(SUPPORTED_SCHEMA_VERSIONS)})"), None
    if any(table[c].null_count for c in REQUIRED_COLUMNS):
        return None, f"partial file, nulls in required columns {list(REQUIRED_COLUMNS)}", None
    return table, "", identity


def _tables_to_frame(tables: list[tuple[Path, pa.Table]]) -> pd.DataFrame:
    """One frame of every table (plus TRIAL_DIR), converted to pandas once; files whose
    column types disagree (another writer's) fall back to one frame per file."""
    try:
        joined = pa.concat_tables([t for _, t in tables], promote_options="permissive")
    except (pa.ArrowException, ValueError):
        return pd.concat([_table_to_frame(path, t) for path, t in tables], ignore_index=True)
    df = joined.to_pandas()
    dirs = np.array([str(path.resolve().parent) for path, _ in tables], dtype=object)
    df[TRIAL_DIR] = np.repeat(dirs, [t.num_rows for _, t in tables])
    return df


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


def _table_to_frame(path: Path, table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    df[TRIAL_DIR] = str(path.resolve().parent)
    return df


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    """Every schema column present and typed; schema order first, extras after."""
    out = {}
    for col, kind in schema.COLUMN_TYPES.items():
        dtype = _PANDAS_DTYPES[kind]
        if col not in df:
            out[col] = pd.Series(_MISSING.get(kind), index=df.index, dtype=dtype)
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
