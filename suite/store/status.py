"""The state of every trial of a sweep directory, from the store (and jobs.json).

Every trial directory is listed, whatever its files look like: its config
comes from config.json, else from the config every result row carries, else
from jobs.json; a damaged file shows as a state (`corrupt`) or a note, never as
a crash or a missing line.

Fast at 10,000 trials: each result file is read once, only the columns a state
needs, and trial directories are read by a pool of threads (file reads and
parquet decoding release the GIL).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.store import schema
from suite.store.results import TRIALS_DIR, ResultFileError, read_rows
from suite.store.states import STATE_CORRUPT, rows_to_state
from suite.store.trial_store import TrialStore

# The columns a trial's state and its config fallback need (of ~150 in a row).
STATUS_COLUMNS = (schema.EPOCH, schema.STATUS, schema.CONFIG_JSON)


@dataclass(frozen=True)
class TrialStatus:
    trial_id: str
    index: int | None
    workers: int | None
    milestones: tuple[int, ...]
    state: str
    last_epoch: int | None
    job: str = ""
    note: str = ""


def sweep_status(directory: Path, jobs: list[Any] = ()) -> list[TrialStatus]:
    """One TrialStatus per trial directory (and per submitted trial not started yet)."""
    directory = Path(directory)
    by_job = {j.trial_id: j for j in jobs}  # later submissions of a trial win
    trial_ids = sorted({p.name for p in (directory / TRIALS_DIR).glob("*") if p.is_dir()}
                       | set(by_job))

    def status_of(trial_id: str) -> TrialStatus:
        return _trial_status(directory, trial_id, by_job.get(trial_id))

    if len(trial_ids) < 8:
        out = [status_of(t) for t in trial_ids]
    else:
        with ThreadPoolExecutor(min(32, 4 * (os.cpu_count() or 1))) as pool:
            out = list(pool.map(status_of, trial_ids))
    return sorted(out, key=lambda s: (s.index is None, s.index or 0, s.trial_id))


def _trial_status(directory: Path, trial_id: str, job: Any) -> TrialStatus:
    store = TrialStore(directory.parent, directory.name, trial_id)
    notes = []
    config = store.read_config()
    if config is None and (store.directory / "config.json").exists():
        notes.append("config.json unreadable")
    try:
        rows = read_rows(store.result_path, STATUS_COLUMNS)  # once: the state reuses them
    except ResultFileError:
        rows = None
        notes.append("result.parquet unreadable")
    if config is None and rows:
        config = _config_from_rows(rows)
    if config is None and job is not None:
        config = {"index": job.trial_index, "workers": job.workers,
                  "milestones": list(job.milestones)}
    config = config or {}
    milestones = tuple(int(m) for m in config.get("milestones") or ())
    if not milestones:
        state = _state_without_config(rows)
    elif rows is None:
        state = STATE_CORRUPT
    else:  # what TrialStore.state says, without reading the file again
        state = rows_to_state(((r[schema.EPOCH], r[schema.STATUS]) for r in rows), milestones,
                              has_checkpoint=store.checkpoint_path.exists())
    done = [r[schema.EPOCH] for r in rows or () if r[schema.STATUS] == schema.STATUS_OK]
    return TrialStatus(trial_id=trial_id, index=_int(config.get("index")),
                       workers=_int(config.get("workers")), milestones=milestones, state=state,
                       last_epoch=max(done, default=None), job=job.job_id if job else "",
                       note="; ".join(notes))


def _config_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    for row in reversed(rows):
        try:
            trial = json.loads(row[schema.CONFIG_JSON])
            return {"index": trial["index"], "workers": trial["workers"],
                    "milestones": trial["milestones"]}
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _state_without_config(rows: list[dict[str, Any]] | None) -> str:
    if rows is None:
        return "corrupt"
    return "unknown (no config)" if rows else "missing"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
