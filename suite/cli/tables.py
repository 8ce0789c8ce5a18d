"""The CLI's tables (rich): a sweep's plan, its results, and its trials' states."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite.common.errors import SpecError
from suite.store import schema

RESULT_COLUMNS = (
    schema.TRIAL_ID, schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM,
    schema.SEED, schema.WORKERS, schema.EPOCH, schema.STATUS, schema.IMAGES_PER_SEC,
    schema.STEP_TIME_P50_MS, schema.LOSS_G, schema.LOSS_D, schema.ELBO, schema.FD_DOMAIN,
    schema.ERROR,
)
PLAN_COLUMNS = ("#", "trial_id", "dataset", "model", "upsampling", "latent",
                "epochs (milestones)", "seed", "batch", "lr", "workers", "max_train", "depth",
                "width", "beta1")


def print_plan(sweep, trials, field: str | None = None) -> None:
    """The trials as a table, or one field of each per line (`--field`, for scripts)."""
    from suite.sweep.spec import Trial

    if field:
        fields = ["trial_id", *(f.name for f in dataclasses.fields(Trial))]
        if field not in fields:
            raise SpecError("command line", "--field", f"unknown field {field[:40]!r}",
                            f"fields: {', '.join(fields)}")
        for t in trials:
            print(getattr(t, field))
        return
    table = Table(title=escape(f"{sweep.name}: {len(sweep.trials)} trials  ({sweep.source})"))
    for col in PLAN_COLUMNS:
        table.add_column(col)
    for t in trials:
        table.add_row(str(t.index), t.trial_id, escape(t.dataset), t.model, t.upsampling,
                      str(t.latent_dim), ",".join(map(str, t.milestones)), str(t.seed),
                      str(t.batch_size), f"{t.lr:g}", str(t.workers),
                      str(t.max_train_images or "all"), str(getattr(t, "depth", "")),
                      f"{getattr(t, 'width', '')}", f"{getattr(t, 'beta1', '')}")
    Console(width=200).print(table)


def print_results(directory: Path, trial_ids: set[str] | None = None) -> None:
    """Rows as `analysis.load_results` reads them (one per trial and epoch); a damaged
    result file is named in a warning line and skipped, never a crash."""
    from analysis.load import load_results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(directory)
    for w in caught:
        print(f"genbench: warning: {w.message}", file=_stderr())
    if trial_ids is not None:
        df = df[df[schema.TRIAL_ID].isin(trial_ids)]
    columns = [c for c in RESULT_COLUMNS if c in df and df[c].notna().any()]
    table = Table(title=escape(f"{directory}: {len(df)} rows"))
    for c in columns:
        table.add_column(c, overflow="fold")
    for _, row in df[columns].iterrows():
        table.add_row(*(escape(_format(row[c])) for c in columns))
    Console(width=220).print(table)


def print_status(directory: Path) -> None:
    from suite.launchers.slurm_jobs import queue_states, read_jobs  # no submitit needed
    from suite.store.status import sweep_status

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs = read_jobs(directory)
    for w in caught:
        print(f"genbench: warning: {w.message}", file=_stderr())
    trials = sweep_status(directory, jobs)
    states = queue_states(t.job for t in trials if t.job)
    table = Table(title=escape(f"{directory}: {len(trials)} trials"))
    for col in ("#", "trial_id", "workers", "state", "last epoch", "milestones", "job", "slurm",
                "note"):
        table.add_column(col)
    for t in trials:
        table.add_row(_format(t.index), t.trial_id, _format(t.workers), t.state,
                      _format(t.last_epoch) or "-", ",".join(map(str, t.milestones)), t.job,
                      states.get(t.job, "not queued" if t.job else ""), escape(t.note))
    Console(width=200).print(table)


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
