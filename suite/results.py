"""The results store: one directory per trial, rows in parquet, written atomically.

    <out>/<sweep>/trials/<trial_id>/result.parquet   one row per milestone
                                    config.json      the resolved trial
                                    samples/epoch_NNNN.png
                                    checkpoint.npz

Column names and types come from `suite.schema`; a row with an unknown column
is a programming error and raises. No TensorFlow here: `analysis` and the CLI's
`show`/`status` read the store with pandas alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from suite import schema

RESULT_FILE = "result.parquet"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.npz"
SAMPLES_DIR = "samples"
TRIALS_DIR = "trials"

# Trial states derived from the store.
STATE_MISSING = "missing"  # never started
STATE_PARTIAL = "partial"  # some milestones written, or only a checkpoint: resumable
_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
ARROW_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in schema.COLUMN_TYPES.items()])


def sweep_dir(out: Path, sweep: str) -> Path:
    return Path(out) / sweep


def trial_dir(out: Path, sweep: str, trial_id: str) -> Path:
    return sweep_dir(out, sweep) / TRIALS_DIR / trial_id


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = _atomic_path(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def rows_to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    for row in rows:
        unknown = set(row) - set(schema.COLUMN_TYPES)
        if unknown:
            raise KeyError(f"columns not in suite.schema: {sorted(unknown)}")
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write all of a trial's rows (temp file + rename: readers never see half a file)."""
    table = rows_to_table(rows)
    tmp = _atomic_path(path)
    pq.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return pq.read_table(path).to_pylist()


def trial_state(directory: Path, milestones: Iterable[int]) -> str:
    """ok / diverged / failed when finished that way, else partial or missing."""
    rows = read_rows(directory / RESULT_FILE)
    statuses = {r[schema.STATUS] for r in rows}
    if schema.STATUS_DIVERGED in statuses:
        return schema.STATUS_DIVERGED
    done = {r[schema.EPOCH] for r in rows if r[schema.STATUS] == schema.STATUS_OK}
    if set(milestones) <= done:
        return schema.STATUS_OK
    if schema.STATUS_FAILED in statuses:
        return schema.STATUS_FAILED
    if rows or (directory / CHECKPOINT_FILE).exists():
        return STATE_PARTIAL
    return STATE_MISSING


def is_finished(state: str) -> bool:
    """Finished trials are skipped on re-runs; divergence is a result, not a fault."""
    return state in (schema.STATUS_OK, schema.STATUS_DIVERGED)


def result_files(*paths: Path) -> list[Path]:
    """Every result.parquet under the given sweep (or results) directories."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        found.extend(sorted([p] if p.name == RESULT_FILE else p.rglob(RESULT_FILE)))
    return found


def read_results_frame(*paths: Path):
    """All rows under the given directories as one pandas DataFrame (schema order)."""
    import pandas as pd

    tables = [pq.read_table(f) for f in result_files(*paths)]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in schema.COLUMNS})
    return pa.concat_tables(tables, promote_options="default").to_pandas()
