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
        if columns is None:
            return pq.read_table(handle)
        parquet = pq.ParquetFile(handle)
        names = set(parquet.schema_arrow.names)
        return parquet.read(columns=[c for c in columns if c in names])


def read_parquet_signed(path: Path) -> tuple[pa.Table, tuple[int, int, int]]:
    """The file's table and the (inode, mtime_ns, size) of the very version read (fstat of
    the one handle), the key suite.store.row_cache keeps it under."""
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        return pq.read_table(handle), (st.st_ino, st.st_mtime_ns, st.st_size)


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


