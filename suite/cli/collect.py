"""`genbench collect`: a sweep's rows as ONE parquet dataset, for pandas, polars and DuckDB.

    <sweep>/collected/model=dcgan/part-0.parquet     (default --out: <sweep>/collected)
                      model=vae/part-0.parquet
                      _genbench_collect.json         (ignored by readers: leading `_`)

The rows are `analysis.load_results`'s (one per trial and epoch, the newest, every
schema column plus `trial_dir`), hive-partitioned by `model`: the axis every
comparison groups or filters by first, with few values, so each reader skips
whole files on `model == ...`. Read it with `pandas.read_parquet(OUT)`,
`pyarrow.dataset.dataset(OUT, partitioning="hive")`,
`polars.scan_parquet(f"{OUT}/**/*.parquet", hive_partitioning=True)` or DuckDB's
`read_parquet('OUT/**/*.parquet', hive_partitioning = true)`.

Written atomically: into a hidden temporary directory beside OUT, then renamed
into place (a previous collect's directory is renamed aside first and removed
after), so a reader sees the old dataset or the new one, never half of one;
between the two renames OUT is briefly absent. A snapshot: rows written after it
are not in it; collect again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from suite.common.errors import SpecError
from suite.store import schema

DEFAULT_NAME = "collected"
MARKER = "_genbench_collect.json"  # marks a directory collect may replace
PARTITION_COLUMN = schema.MODEL


@dataclass(frozen=True)
class Collected:
    """What one collect wrote."""

    out: Path
    rows: int
    trials: int
    files: int


def default_out(sweep_dirs: list[Path]) -> Path:
    return Path(sweep_dirs[0]) / DEFAULT_NAME


def collect_sweep(sweep_dirs: list[Path], out: Path) -> Collected:
    """Write the rows under `sweep_dirs` to `out` (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from analysis.load import load_results

    out = Path(out)
    _check_replaceable(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(*sweep_dirs)
    for w in caught:
        print(f"genbench: warning: {w.message}", file=_stderr())
    if df.empty:
        raise SpecError(str(sweep_dirs[0])[:200], "dirs", "no result rows to collect",
                        "give a sweep directory with finished trials, e.g. results/smoke")
    table = pa.Table.from_pandas(df, preserve_index=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        ds.write_dataset(table, tmp, format="parquet", partitioning=[PARTITION_COLUMN],
                         partitioning_flavor="hive", basename_template="part-{i}.parquet",
                         existing_data_behavior="error")
        files = sorted(tmp.rglob("*.parquet"))
        (tmp / MARKER).write_text(json.dumps({
            "sources": [str(Path(d).resolve()) for d in sweep_dirs], "rows": len(df),
            "partitioning": [PARTITION_COLUMN]}, indent=1) + "\n")
        for f in [*files, tmp / MARKER]:
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        replace_directory(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Collected(out=out, rows=len(df), trials=int(df[schema.TRIAL_ID].nunique()),
                     files=len(files))


def replace_directory(new: Path, out: Path) -> None:
    """Rename `new` onto `out`; an existing `out` is renamed aside first, removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
    try:
        os.rename(new, out)
    except OSError:
        if old is not None:
            with contextlib.suppress(OSError):
                os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_replaceable(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (out / MARKER).is_file()):
        raise SpecError("command line", "--out", f"{str(out)[:200]} exists and is not a "
                        "dataset `genbench collect` wrote", "choose another --out, or move it")


def _stderr():
    import sys

    return sys.stderr
