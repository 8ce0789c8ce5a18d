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
`analysis.load_results` writes it; `genbench status` and `show` read the few
columns they need from it. Deleting it only costs time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


@dataclass(frozen=True)
class CachedFile:
    """Where one result file's rows sit in the cache table, and the file version they are."""

    identity: Identity
    start: int
    length: int


@dataclass(frozen=True)
class RowCache:
    """The cache's rows (key columns dropped) and, per relative file path, its place."""

    table: pa.Table
    files: dict[str, CachedFile]

    def hit(self, name: str, path: str) -> CachedFile | None:
        """The entry of `name` while the file at `path` is still the version cached."""
        entry = self.files.get(name)
        return entry if entry is not None and entry.identity == file_identity(path) else None


EMPTY = RowCache(pa.table({}), {})


def file_identity(path: str | Path) -> Identity | None:
    """(inode, mtime_ns, size) of the file now, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def cache_dir_of(result_file: str) -> str | None:
    """The sweep directory of `<sweep>/trials/<id>/result.parquet`, else None."""
    trials = os.path.dirname(os.path.dirname(result_file))
    return os.path.dirname(trials) if os.path.basename(trials) == TRIALS_DIR else None


def read_cache(sweep: str | Path, columns: Iterable[str] | None = None) -> RowCache:
    """The cache of `sweep` (only `columns` of its rows, those it has); EMPTY when absent
    or unreadable: the files are the truth."""
    wanted = None if columns is None else [*_KEY_COLUMNS, *columns]
    try:
        table = read_parquet_once(Path(sweep) / CACHE_FILE, wanted)
    except Exception:  # absent, partial, from another version
        return EMPTY
    if any(c not in table.column_names for c in _KEY_COLUMNS) or table.num_rows == 0:
        return EMPTY
    names = table[FILE].to_numpy(zero_copy_only=False)
    # A file's rows are contiguous: an entry starts wherever the file name changes.
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    ends = np.r_[starts[1:], len(names)]
    keys = zip(*(table[c].take(starts).to_pylist() for c in _KEY_COLUMNS), strict=True)
    files = {name: CachedFile((inode, mtime, size), int(s), int(e - s))
             for (name, inode, mtime, size), s, e in zip(keys, starts, ends, strict=True)}
    return RowCache(table.drop_columns(list(_KEY_COLUMNS)), files)


def write_cache(sweep: str | Path,
                pieces: Sequence[tuple[pa.Table, Sequence[tuple[str, Identity, int]]]]) -> None:
    """Replace the cache with `pieces`: tables of rows, each with the (relative path,
    identity, row count) of the files its rows come from, in row order. Silently
    nothing when the directory is not writable or the tables do not join."""
    tables = []
    for table, files in pieces:
        counts = [n for _, _, n in files]
        keys = {FILE: [name for name, _, _ in files], INODE: [i[0] for _, i, _ in files],
                MTIME: [i[1] for _, i, _ in files], SIZE: [i[2] for _, i, _ in files]}
        for column, values in keys.items():
            kind = pa.string() if column == FILE else pa.int64()
            table = table.append_column(column, pa.array(np.repeat(
                np.array(values, dtype=object if column == FILE else np.int64), counts), kind))
        tables.append(table)
    with contextlib.suppress(OSError, GenbenchError, pa.ArrowException, ValueError):
        joined = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
        write_atomic(Path(sweep) / CACHE_FILE, lambda tmp: pq.write_table(joined, tmp),
                     sync=False)
