"""The state of every trial of a sweep directory, from the store (and jobs.json).

Every trial directory is listed, whatever its files look like: its config
comes from config.json, else from the config every result row carries, else
from jobs.json; a damaged file shows as a state (`corrupt`) or a note, never as
a crash or a missing line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.store import schema
from suite.store.results import TRIALS_DIR, ResultFileError
from suite.store.trial_store import TrialStore


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
    out = [_trial_status(directory, trial_id, by_job.get(trial_id)) for trial_id in trial_ids]
    return sorted(out, key=lambda s: (s.index is None, s.index or 0, s.trial_id))


def _trial_status(directory: Path, trial_id: str, job: Any) -> TrialStatus:
    store = TrialStore(directory.parent, directory.name, trial_id)
    notes = []
    config = store.read_config()
    if config is None and (store.directory / "config.json").exists():
        notes.append("config.json unreadable")
    try:
        rows = store.rows()
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
    state = store.state(milestones) if milestones else _state_without_config(rows)
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
