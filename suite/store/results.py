"""Result rows: parquet files of one row per milestone, their layout and their meaning.

    <out>/<sweep>/trials/<trial_id>/result.parquet   (the rest of a trial's
                                                      directory: suite.store.trial_store)

Column names and types come from `suite.store.schema`; a row with an unknown column
is a programming error and raises. A file that cannot be read raises
ResultFileError naming it. No TensorFlow here: `analysis` and the CLI's
`show`/`status` read the store with pandas alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from suite.common.atomic import write_atomic
from suite.common.errors import GenbenchError
from suite.store import schema

RESULT_FILE = "result.parquet"
TRIALS_DIR = "trials"

class ResultFileError(GenbenchError):
    """A result.parquet that cannot be read."""
_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(),
                "bool": pa.bool_()}
ARROW_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in schema.COLUMN_TYPES.items()])


def sweep_dir(out: Path, sweep: str) -> Path:
    return Path(out) / sweep


def trial_dir(out: Path, sweep: str, trial_id: str) -> Path:
    return sweep_dir(out, sweep) / TRIALS_DIR / trial_id


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(schema.COLUMN_TYPES)
        if unknown:
            raise KeyError(f"columns not in suite.store.schema: {sorted(unknown)}")
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write all of a trial's rows (temp file + rename: readers never see half a file)."""
    table = rows_to_table(rows)
    write_atomic(Path(path), lambda tmp: pq.write_table(table, tmp))


def read_parquet_once(path: Path, columns: Iterable[str] | None = None) -> pa.Table:
    """The table of the file at `path`, read through ONE open handle.

    Writers replace result files by rename while runs go on; `pq.read_table(path)`
    opens the path more than once (footer, then pages), so a rename in between
    mixed two files' bytes ("Page was smaller than expected") in a quarter of reads
    under a busy writer. An open handle keeps reading the one file it opened.
    `columns`: only those of them the file has (status needs 3 of ~150).
    """
    with open(path, "rb") as handle:
        return _read_handle(handle, columns)


def _read_handle(handle: Any, columns: Iterable[str] | None = None) -> pa.Table:
    """ParquetFile.read, not pq.read_table: the dataset machinery behind read_table
    costs ~2x the CPU on a small file (4 vs 6-8 ms for a 2-row, 135-column one), and a
    file of a few rows gains nothing from a thread per column."""
    parquet = pq.ParquetFile(handle)
    if columns is None:
        return parquet.read(use_threads=False)
    names = set(parquet.schema_arrow.names)
    return parquet.read(columns=[c for c in columns if c in names], use_threads=False)


def read_parquet_signed(path: Path) -> tuple[pa.Table, tuple[int, int, int]]:
    """The file's table and the (inode, mtime_ns, size) of the very version read (fstat of
    the one handle), the key suite.store.row_cache keeps it under."""
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        return _read_handle(handle), (st.st_ino, st.st_mtime_ns, st.st_size)


def read_table(path: Path, columns: Iterable[str] | None = None) -> pa.Table:
    """The file's table; ResultFileError (naming the file and a fix) when unreadable."""
    try:
        return read_parquet_once(path, columns)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ResultFileError(
            f"{path}: not a readable result file ({type(exc).__name__}: {str(exc)[:120]})\n"
            "  fix: `genbench run` sets it aside (renamed *.corrupt-*) and re-trains the "
            "trial; or move it away yourself") from None


def read_rows(path: Path, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Every row ([] when there is no file), or only `columns` of each (when present)."""
    if not Path(path).exists():
        return []
    table = read_table(path, columns)
    missing = {schema.EPOCH, schema.STATUS} - set(table.column_names)
    if missing:
        raise ResultFileError(f"{path}: not a genbench result file (no {sorted(missing)} "
                              "columns)\n  fix: move it away; `genbench run` re-trains the trial")
    return table.to_pylist()


def result_files(*paths: Path) -> list[Path]:
    """Every result.parquet under the given sweep (or results) directories."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        found.extend(sorted([p] if p.name == RESULT_FILE else p.rglob(RESULT_FILE)))
    return found




def find_result_files(*paths: str | Path) -> list[str]:
    """Real paths of every result.parquet under `paths` (sweep dirs, results roots or
    result files), each once: sorted within a path, paths in the order given.

    Walks with os.scandir on strings (10,000 trials list in well under a second, where
    Path.rglob and resolve() took seconds), does not descend into symlinked
    directories (as rglob), nor below a directory that holds a result file (a
    trial's own subdirectories hold none)."""
    seen: set[str] = set()
    found: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.basename(p) == RESULT_FILE:
            files = [os.path.realpath(p)]
        else:
            files = sorted(_walk_result_files(os.path.realpath(p)), key=lambda f: f.split(os.sep))
        for f in files:
            if f not in seen:
                seen.add(f)
                found.append(f)
    return found


def _walk_result_files(directory: str) -> list[str]:
    """Result files under a real directory path, as real paths."""
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except OSError:  # gone or unreadable meanwhile: as rglob, nothing from it
        return []
    for entry in entries:
        if entry.name == RESULT_FILE and entry.is_file():
            return [os.path.realpath(entry.path) if entry.is_symlink() else entry.path]
    found: list[str] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                found.extend(_walk_result_files(entry.path))
        except OSError:
            continue
    return found
