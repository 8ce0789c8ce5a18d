"""The state of every trial of a sweep directory, from the store (and jobs.json).

Every trial directory is listed, whatever its files look like: its config
comes from config.json, else from the config every result row carries, else
from jobs.json; a damaged file shows as a state (`corrupt`) or a note, never as
a crash or a missing line.

Fast at 10,000 trials: a result file's rows come from the sweep's row cache while
the file is the version cached (suite.store.row_cache), else from the file, read
once and only the columns a state needs; trial directories are read by a pool of
threads (file reads and parquet decoding release the GIL).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite.store import schema
from suite.store.results import RESULT_FILE, TRIALS_DIR, ResultFileError, read_rows
from suite.store.row_cache import read_cache
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
    trial_ids = sorted(set(_trial_dirs(directory)) | set(by_job))
    rows_of = _cached_rows(directory)
    cached = {t: rows_of(t) for t in trial_ids}

    def status_of(trial_id: str) -> TrialStatus:
        return _trial_status(directory, trial_id, by_job.get(trial_id), cached[trial_id])

    # Trials whose rows the cache holds cost a stat or two each: threads would only
    # contend for the GIL. Result files to decode go to a pool (decoding releases it).
    out = [status_of(t) for t in trial_ids if cached[t] is not None]
    to_read = [t for t in trial_ids if cached[t] is None]
    if len(to_read) < 8:
        out += [status_of(t) for t in to_read]
    else:
        with ThreadPoolExecutor(min(32, 4 * (os.cpu_count() or 1))) as pool:
            out += pool.map(status_of, to_read)
    return sorted(out, key=lambda s: (s.index is None, s.index or 0, s.trial_id))


def _trial_dirs(directory: Path) -> list[str]:
    try:
        with os.scandir(directory / TRIALS_DIR) as entries:
            return [e.name for e in entries if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _cached_rows(directory: Path) -> Callable[[str], list[dict[str, Any]] | None]:
    """trial id -> its rows' STATUS_COLUMNS from the sweep's row cache (while the result
    file is still the version cached), else None: read the file."""
    cache = read_cache(directory, STATUS_COLUMNS)
    if not cache.files or any(c not in cache.table.column_names for c in STATUS_COLUMNS):
        return lambda trial_id: None
    values = {c: cache.table[c].to_pylist() for c in STATUS_COLUMNS}

    def rows_of(trial_id: str) -> list[dict[str, Any]] | None:
        name = f"{TRIALS_DIR}/{trial_id}/{RESULT_FILE}"
        entry = cache.hit(name, os.path.join(directory, name))
        if entry is None:
            return None
        span = range(entry.start, entry.start + entry.length)
        return [{c: values[c][i] for c in STATUS_COLUMNS} for i in span]

    return rows_of


def _trial_status(directory: Path, trial_id: str, job: Any,
                  cached_rows: list[dict[str, Any]] | None) -> TrialStatus:
    """The trial's status; `cached_rows`: its rows from the row cache, None: read the file."""
    store = TrialStore(directory.parent, directory.name, trial_id)
    notes = []
    config = store.read_config()
    if config is None and (store.directory / "config.json").exists():
        notes.append("config.json unreadable")
    rows = cached_rows
    try:
        if rows is None:
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
