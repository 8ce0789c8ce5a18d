"""A sweep's result rows kept in one parquet file, so reading 10,000 trials decodes one file
plus the few that changed (decoding a ~130-column result file costs milliseconds of CPU
however few its rows).

    <sweep>/.rows-cache.parquet    every cached file's rows + its path and identity

A result file's rows are taken from the cache only while its identity, (inode,
mtime_ns, size) from `os.stat`, equals the one recorded when those rows were read
(from `fstat` of the very handle they were read through). Writers replace result
files by rename (a new inode), so a rewritten file is read again; a reader racing
a rename gets one whole version either way, as without the cache. The cache is
written atomically, only for sweeps of CACHE_MIN_FILES files or more, and only
when something changed; a directory the reader may not write gets no cache.
Nothing but `analysis.load_results` reads it; deleting it only costs time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from suite.common.atomic import write_atomic
from suite.common.errors import GenbenchError
from suite.store.results import TRIALS_DIR, read_parquet_once

CACHE_FILE = ".rows-cache.parquet"
CACHE_MIN_FILES = 100
FILE, INODE, MTIME, SIZE = "_cache_file", "_cache_inode", "_cache_mtime_ns", "_cache_size"
_KEY_COLUMNS = (FILE, INODE, MTIME, SIZE)
Identity = tuple[int, int, int]


def cache_dir_of(result_file: Path) -> Path | None:
    """The sweep directory of `<sweep>/trials/<id>/result.parquet`, else None."""
    trial = Path(result_file).parent
    return trial.parent.parent if trial.parent.name == TRIALS_DIR else None


def read_cache(sweep: Path) -> dict[str, tuple[Identity, pa.Table]]:
    """Relative result-file path -> (identity, its rows); {} when absent or unreadable."""
    try:
        table = read_parquet_once(Path(sweep) / CACHE_FILE)
    except Exception:  # absent, partial, from another version: the files are the truth
        return {}
    if any(c not in table.column_names for c in _KEY_COLUMNS) or table.num_rows == 0:
        return {}
    keys = list(zip(*(table[c].to_pylist() for c in _KEY_COLUMNS), strict=True))
    rows = table.drop_columns(list(_KEY_COLUMNS))
    out: dict[str, tuple[Identity, pa.Table]] = {}
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            name, inode, mtime, size = keys[start]
            out[name] = ((inode, mtime, size), rows.slice(start, i - start))
            start = i
    return out


def write_cache(sweep: Path, entries: Sequence[tuple[str, Identity, pa.Table]]) -> None:
    """Replace the cache with `entries` (relative path, identity, rows); silently nothing
    when the directory is not writable or the tables do not join."""
    tables = []
    for name, (inode, mtime, size), table in entries:
        n = table.num_rows
        tables.append(table.append_column(FILE, pa.array([name] * n, pa.string()))
                      .append_column(INODE, pa.array([inode] * n, pa.int64()))
                      .append_column(MTIME, pa.array([mtime] * n, pa.int64()))
                      .append_column(SIZE, pa.array([size] * n, pa.int64())))
    with contextlib.suppress(OSError, GenbenchError, pa.ArrowException, ValueError):
        joined = pa.concat_tables(tables, promote_options="permissive")
        write_atomic(Path(sweep) / CACHE_FILE, lambda tmp: pq.write_table(joined, tmp),
                     sync=False)
