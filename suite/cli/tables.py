"""The CLI's tables (rich): a sweep's results and its trials' states (plans: plan.py)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite.store import schema

T = TypeVar("T")

RESULT_COLUMNS = (
    schema.TRIAL_ID, schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM,
    schema.SEED, schema.WORKERS, schema.EPOCH, schema.STATUS, schema.IMAGES_PER_SEC,
    schema.STEP_TIME_P50_MS, schema.LOSS_G, schema.LOSS_D, schema.ELBO, schema.FD_DOMAIN,
    schema.ERROR,
)
TABLE_ROWS = 40  # whole tables up to this many rows; else the first and last 20 (--all: all)


def bounded(items: Sequence[T], show_all: bool = False,
            limit: int = TABLE_ROWS) -> list[T | None]:
    """`items`, or their first and last limit/2 with None where the rest was left out:
    rich needs seconds per thousand rows, and 10,000 trials are a table nobody reads."""
    if show_all or len(items) <= limit:
        return list(items)
    half = limit // 2
    return [*items[:half], None, *items[-half:]]


def count_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items())


def print_results(directory: Path, trial_ids: set[str] | None = None,
                  show_all: bool = False) -> None:
    """Rows as `analysis.load_results` reads them (one per trial and epoch), the first and
    last past TABLE_ROWS unless `show_all`; a damaged result file is named in a warning
    line and skipped, never a crash."""
    from analysis.load import load_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(directory, columns=RESULT_COLUMNS)  # 16 of ~150: 10x less to read
    for w in caught:
        print(f"genbench: warning: {w.message}", file=_stderr())
    if trial_ids is not None:
        df = df[df[schema.TRIAL_ID].isin(trial_ids)]
    columns = [c for c in RESULT_COLUMNS if c in df and df[c].notna().any()]
    trials = df[schema.TRIAL_ID].nunique()
    statuses = count_text(Counter(df[schema.STATUS].dropna()))
    console = Console(width=220)
    console.print(escape(f"{directory}: {len(df):,} rows of {trials:,} trials"
                         + (f" ({statuses})" if statuses else "")), highlight=False,
                  soft_wrap=True)
    table = Table()
    for c in columns:
        table.add_column(c, overflow="fold")
    records = df[columns].to_dict("records")
    for row in bounded(records, show_all):
        if row is None:
            table.add_row("...", *[""] * (len(columns) - 1))
            continue
        table.add_row(*(escape(_format(row[c])) for c in columns))
    console.print(table)
    if len(records) > TABLE_ROWS and not show_all:
        console.print(f"first and last {TABLE_ROWS // 2} of {len(records):,} rows; every row: "
                      "--all; in Python: analysis.load_results (docs/analysis.md)",
                      highlight=False)


def print_status(directory: Path, show_all: bool = False) -> None:
    """Each trial's state: counts by state, then a table (past TABLE_ROWS trials, the
    first and last of those not ok, or of all when every one is ok; `show_all`: all)."""
    from suite.launchers.slurm_jobs import queue_states, read_jobs  # no submitit needed
    from suite.store.status import sweep_status

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs = read_jobs(directory)
    for w in caught:
        print(f"genbench: warning: {w.message}", file=_stderr())
    trials = sweep_status(directory, jobs)
    states = queue_states(t.job for t in trials if t.job)
    counts = count_text(Counter(t.state for t in trials))
    shown = trials
    if not show_all and len(trials) > TABLE_ROWS:
        shown = [t for t in trials if t.state != schema.STATUS_OK] or trials
    console = Console(width=200)
    console.print(escape(f"{directory}: {len(trials):,} trials"
                         + (f" ({counts})" if counts else "")), highlight=False, soft_wrap=True)
    table = Table()
    for col in ("#", "trial_id", "workers", "state", "last epoch", "milestones", "job", "slurm",
                "note"):
        table.add_column(col)
    listed = bounded(shown, show_all)
    for t in listed:
        if t is None:
            table.add_row("...", *[""] * 8)
            continue
        table.add_row(_format(t.index), t.trial_id, _format(t.workers), t.state,
                      _format(t.last_epoch) or "-", ",".join(map(str, t.milestones)), t.job,
                      states.get(t.job, "not queued" if t.job else ""), escape(t.note))
    console.print(table)
    if len(listed) != len(trials):
        which = f"the {len(shown):,} trials not ok" if len(shown) != len(trials) else "trials"
        part = f"the first and last {TABLE_ROWS // 2} of " if len(listed) != len(shown) else ""
        console.print(f"listed: {part}{which}; every trial: --all", highlight=False)
    from suite.launchers.slurm_jobs import describe_jobs
    from suite.store.disk import describe_disk, sweep_disk

    if any(t.job for t in trials):
        print(describe_jobs([t.job for t in trials if t.job], states))
    print(describe_disk(sweep_disk(directory)))


def _format(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    try:
        import pandas as pd

        if value is pd.NA:
            return ""
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _stderr():
    import sys

    return sys.stderr
