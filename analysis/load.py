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

import itertools
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from suite.store import schema
from suite.store.results import find_result_files, read_parquet_once, read_parquet_signed
from suite.store.row_cache import (
    CACHE_MIN_FILES,
    CachedFile,
    Identity,
    RowCache,
    cache_dir_of,
    read_cache,
    write_cache,
)

# Besides REQUIRED_COLUMNS, what de-duplication and the row order read.
_ORDER_COLUMNS = (schema.TIMESTAMP, schema.SWEEP, schema.TRIAL_INDEX)

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


def refresh_row_cache(*paths: str | Path) -> None:
    """Bring the row cache of each big sweep under `paths` up to date (a full read of
    the files that changed), so the next `show`, `status` or `report` reads one file:
    `genbench run` calls it when its trials are done. Nothing to do below
    CACHE_MIN_FILES files per sweep; damaged files are left to the reader that
    reports them (no warning here, so none twice)."""
    files = find_result_files(*paths)
    if max(Counter(cache_dir_of(f) for f in files if cache_dir_of(f)).values(),
           default=0) < CACHE_MIN_FILES:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultsWarning)
        read_pieces(files)


def empty_results(columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A frame with every schema column (or `columns` of them), typed, plus TRIAL_DIR and
    no rows."""
    frame = {c: pd.Series(dtype=_PANDAS_DTYPES[k]) for c, k in _schema_types(columns).items()}
    frame[TRIAL_DIR] = pd.Series(dtype="str")
    return pd.DataFrame(frame)


def load_results(*paths: str | Path, deduplicate: bool = True,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All result rows under `paths` (sweep dirs, results roots or result.parquet files).

    genbench's one reader of results (`genbench show`, `report`, analysis and the
    tests): one row per (trial, epoch), the newest; `deduplicate=False` keeps every
    row as written (for audits that count rows). `columns`: only those schema columns
    (plus the ones that identify and order a row), far faster on big sweeps.

    Raises FileNotFoundError for a path that does not exist. Unreadable, partial
    or foreign-schema files are skipped with a `ResultsWarning` naming the file.
    Returns schema columns in schema order (nullable `Int64` for int columns),
    then TRIAL_DIR and any extra columns a newer writer added.
    """
    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"no such results path: {p}")
    if columns is not None:
        columns = list(dict.fromkeys([*REQUIRED_COLUMNS, *_ORDER_COLUMNS, *columns]))
    pieces = read_pieces(find_result_files(*paths), columns)
    if not pieces:
        return empty_results(columns)
    df = _conform(_pieces_to_frame(pieces), columns)
    return _deduplicate(df) if deduplicate else df


@dataclass(frozen=True)
class Piece:
    """Rows read in one go: one file's, or a run of consecutive files' from a sweep's
    row cache; the files they come from, in row order, with their row counts and the
    identity of the version read (None when not known)."""

    table: pa.Table
    files: tuple[str, ...]
    counts: tuple[int, ...]
    identities: tuple[Identity | None, ...]


def read_pieces(files: Sequence[str], columns: Sequence[str] | None = None,
                threads: int | None = None) -> list[Piece]:
    """The checked rows of `files`, in file order, in as few pieces as the row cache
    allows; a file that fails its checks is skipped with a ResultsWarning naming it.
    Sweeps of many files keep their rows in a cache checked against every file's
    identity (suite.store.row_cache), rewritten here when a full read changed it; the
    other files are read by `threads` threads (default: 2 per core, at most 32: on
    page-cached files decoding is CPU-bound, and 8 threads on 2 cores ran 17% slower)."""
    sweeps = [cache_dir_of(f) for f in files]
    sizes = Counter(sweeps)
    caches = {d: read_cache(d, columns) for d, n in sizes.items()
              if d is not None and n >= CACHE_MIN_FILES}
    hits: list[CachedFile | None] = [
        caches[d].hit(f[len(d) + 1:], f) if d in caches else None
        for f, d in zip(files, sweeps, strict=True)]
    todo = [i for i, hit in enumerate(hits) if hit is None]
    threads = threads or min(32, 2 * (os.cpu_count() or 1))
    if len(todo) < 2 or threads < 2:
        fresh = [_read_checked(files[i], columns) for i in todo]
    else:
        with ThreadPoolExecutor(threads) as pool:
            fresh = list(pool.map(lambda i: _read_checked(files[i], columns), todo))
    read = dict(zip(todo, fresh, strict=True))
    pieces: list[Piece] = []
    run: list[int] = []  # consecutive cache hits of one sweep, contiguous in its cache

    def close_run() -> None:
        if run:
            first = hits[run[0]]
            length = sum(hits[i].length for i in run)
            pieces.append(Piece(caches[sweeps[run[0]]].table.slice(first.start, length),
                                tuple(files[i] for i in run),
                                tuple(hits[i].length for i in run),
                                tuple(hits[i].identity for i in run)))
            run.clear()

    for i, (f, hit) in enumerate(zip(files, hits, strict=True)):
        if hit is not None:
            last = hits[run[-1]] if run else None
            if last is not None and (sweeps[run[-1]] != sweeps[i]
                                     or last.start + last.length != hit.start):
                close_run()
            run.append(i)
            continue
        close_run()
        table, problem, identity = read[i]
        if problem:
            _warn(f, problem)  # here, in the caller's thread and file order
        else:
            pieces.append(Piece(table, (f,), (table.num_rows,), (identity,)))
    close_run()
    pieces = _merge_pieces(pieces)
    if columns is None:
        _refresh_caches(caches, pieces, {sweeps[i] for i in todo}, files, sweeps)
    return pieces


def _merge_pieces(pieces: list[Piece]) -> list[Piece]:
    """Consecutive pieces of one sweep as one contiguous table: 10,000 freshly read
    files are 10,000 chunks per column otherwise, which cost seconds in every step
    after (joining, pandas, writing the cache). Pieces whose types disagree stay apart."""
    merged: list[Piece] = []
    for _, group in itertools.groupby(pieces, key=lambda p: cache_dir_of(p.files[0])):
        group = list(group)
        if len(group) > 1:
            try:
                table = pa.concat_tables([p.table for p in group], promote_options="permissive")
            except (pa.ArrowException, ValueError):
                merged.extend(group)
                continue
            group = [Piece(table.combine_chunks(), *(tuple(itertools.chain.from_iterable(
                getattr(p, name) for p in group)) for name in ("files", "counts", "identities")))]
        merged.extend(group)
    return merged


def _refresh_caches(caches: dict[str, RowCache], pieces: list[Piece], touched: set,
                    files: Sequence[str], sweeps: Sequence[str | None]) -> None:
    """Rewrite the cache of each sweep whose files changed, were added or were removed."""
    listed: dict[str, set[str]] = {}
    for f, d in zip(files, sweeps, strict=True):
        if d in caches:
            listed.setdefault(d, set()).add(f[len(d) + 1:])
    for d, cache in caches.items():
        if d not in touched and not set(cache.files) - listed.get(d, set()):
            continue
        write_cache(d, [(p.table, [(f[len(d) + 1:], ident, n) for f, ident, n
                                   in zip(p.files, p.identities, p.counts, strict=True)])
                        for p in pieces if cache_dir_of(p.files[0]) == d])


def _read_checked(path: str, columns: Sequence[str] | None = None
                  ) -> tuple[pa.Table | None, str, Identity | None]:
    """(table, "", identity) or (None, why it is skipped, None): the checks of a file.
    With `columns`, only those are read and the identity is not taken."""
    try:
        if columns is None:
            table, identity = read_parquet_signed(path)
        else:
            table, identity = read_parquet_once(path, columns), None
    except Exception as exc:  # truncated, not parquet, unreadable: skip, the rest still loads
        return None, f"unreadable parquet ({type(exc).__name__}: {exc})", None
    names = set(table.schema.names)  # once: column_names builds a new list at each call
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        return None, f"partial file, missing required columns {missing}", None
    try:  # a file holds a few rows: to_pylist beats a compute kernel's call cost 10-fold
        versions = set(table[schema.SCHEMA_VERSION_COL].to_pylist()) - {None}
    except (pa.ArrowException, TypeError) as exc:
        return None, f"unreadable schema_version ({exc})", None
    unsupported = versions - SUPPORTED_SCHEMA_VERSIONS
    if unsupported:
        return None, (f"schema_version {sorted(unsupported)} not supported by this analysis "
                      f"(supports {sorted(SUPPORTED_SCHEMA_VERSIONS)})"), None
    if any(table[c].null_count for c in REQUIRED_COLUMNS):
        return None, f"partial file, nulls in required columns {list(REQUIRED_COLUMNS)}", None
    return table, "", identity


def _pieces_to_frame(pieces: list[Piece]) -> pd.DataFrame:
    """One frame of every piece (plus TRIAL_DIR), converted to pandas once; pieces whose
    column types disagree (another writer's files) fall back to one frame per piece."""
    try:
        joined = pa.concat_tables([p.table for p in pieces], promote_options="permissive")
        df = joined.to_pandas()
    except (pa.ArrowException, ValueError):
        df = pd.concat([p.table.to_pandas() for p in pieces], ignore_index=True)
    dirs = np.array([os.path.dirname(f) for p in pieces for f in p.files], dtype=object)
    df[TRIAL_DIR] = np.repeat(dirs, [n for p in pieces for n in p.counts])
    return df


def sample_path(row: Mapping[str, Any] | pd.Series) -> Path | None:
    """Absolute path of a row's sample grid PNG, or None when the row has none."""
    rel, base = row.get(schema.SAMPLES_PNG), row.get(TRIAL_DIR)
    if not isinstance(rel, str) or not rel or not isinstance(base, str) or not base:
        return None
    return Path(base) / rel


def _warn(path: str, problem: str) -> None:
    warnings.warn(f"skipping {path}: {problem}", ResultsWarning, stacklevel=3)


def _schema_types(columns: Sequence[str] | None) -> dict[str, str]:
    """The schema's column types, of every column or of `columns` (in schema order)."""
    if columns is None:
        return schema.COLUMN_TYPES
    return {c: k for c, k in schema.COLUMN_TYPES.items() if c in set(columns)}


def _conform(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every schema column (or `columns` of them) present and typed; schema order first,
    extras after."""
    out = {}
    for col, kind in _schema_types(columns).items():
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
