"""TrialStore: one trial's directory in the results store, and the only code that writes it.

    <out>/<sweep>/trials/<trial_id>/result.parquet     one row per milestone (suite.store.results)
                                    config.json        the resolved trial
                                    environment.json   the process that trains it (host, device)
                                    checkpoint.npz     the trainer's last epoch
                                    samples/epoch_NNNN.png
                                    error.txt          the last failure's traceback or log
                                    lease.json         who trains it now (suite.store.lease)

A damaged file is never fatal and never deleted: it is renamed aside
(`NAME.corrupt-<time>`) with a warning naming it, and the trial restarts from
its last good state (from scratch when the rows or the checkpoint are gone).
No TensorFlow here: the driver of a sweep uses the store too.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from suite.common.atomic import write_json_atomic, write_text_atomic
from suite.common.errors import GenbenchError
from suite.store import schema
from suite.store.lease import TrialLease
from suite.store.results import RESULT_FILE, ResultFileError, read_rows, trial_dir, write_rows
from suite.store.states import STATE_CORRUPT, rows_to_state

CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "environment.json"
CHECKPOINT_FILE = "checkpoint.npz"
SAMPLES_DIR = "samples"
ERROR_FILE = "error.txt"
LEASE_FILE = "lease.json"
LOG_FILE = "worker.log"


class StoreFileError(GenbenchError):
    """A file of the store that cannot be read (named in the message)."""


class TrialStore:
    """Rows, state, config, environment, failures, checkpoint path and lease of one trial."""

    def __init__(self, out: Path, sweep: str, trial_id: str) -> None:
        self.directory = trial_dir(out, sweep, trial_id)
        self.trial_id = trial_id
        self.notes: list[str] = []  # what repair() set aside, for the trial's log

    @classmethod
    def of(cls, out: Path, trial: Any) -> TrialStore:
        return cls(out, trial.sweep, trial.trial_id)

    # --- paths -----------------------------------------------------------------------------

    @property
    def result_path(self) -> Path:
        return self.directory / RESULT_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.directory / CHECKPOINT_FILE

    @property
    def samples_dir(self) -> Path:
        return self.directory / SAMPLES_DIR

    @property
    def error_path(self) -> Path:
        return self.directory / ERROR_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    def lease(self) -> TrialLease:
        return TrialLease(self.directory / LEASE_FILE)

    # --- rows and state ---------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Every row; raises ResultFileError (naming the file) when it is unreadable."""
        return read_rows(self.result_path)

    def ok_rows(self) -> dict[int, dict[str, Any]]:
        """Rows of the milestones already written, by epoch (failed rows are attempts)."""
        return {r[schema.EPOCH]: r for r in self.rows() if r[schema.STATUS] == schema.STATUS_OK}

    def state(self, milestones: Iterable[int]) -> str:
        """ok / diverged / failed / partial / missing (see suite.store.results.rows_to_state);
        `corrupt` when the result file is unreadable (a run sets it aside and restarts)."""
        try:
            rows = self.rows()
        except ResultFileError:
            return STATE_CORRUPT
        return rows_to_state(((r[schema.EPOCH], r[schema.STATUS]) for r in rows), milestones,
                             has_checkpoint=self.checkpoint_path.exists())

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        write_rows(self.result_path, rows)

    def last_error(self) -> str:
        failed = [r for r in self._readable_rows() if r[schema.STATUS] == schema.STATUS_FAILED]
        return str(failed[-1][schema.ERROR]) if failed else ""

    # --- config and environment ---------------------------------------------------------------

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_json_atomic(self.directory / CONFIG_FILE, dict(config))

    def read_config(self) -> dict[str, Any] | None:
        """The trial's config.json, or None when it is missing or unreadable."""
        return _read_json(self.directory / CONFIG_FILE)

    def write_environment(self, environment: Mapping[str, Any]) -> None:
        """Recorded by the process that trains the trial, for rows written by others."""
        write_json_atomic(self.directory / ENVIRONMENT_FILE, dict(environment))

    def read_environment(self) -> dict[str, Any]:
        env = _read_json(self.directory / ENVIRONMENT_FILE) or {}
        return {k: v for k, v in env.items() if k in schema.COLUMN_TYPES}

    # --- failures ------------------------------------------------------------------------------

    def record_failure(self, base: Mapping[str, Any], error: str, detail: str = "",
                       epoch_reached: int = 0,
                       environment: Mapping[str, Any] | None = None) -> None:
        """Append a `failed` row after the ok rows (earlier failed rows are dropped) and
        keep the traceback or log excerpt in error.txt.

        The row carries `environment` (the failing process's own) or else the one
        the training process recorded, never the caller's machine.
        """
        rows = list(self.ok_rows_or_empty().values())
        last = max((r[schema.EPOCH] for r in rows), default=0)
        write_text_atomic(self.error_path, detail or error)
        env = dict(environment) if environment is not None else self.read_environment()
        failed = {**base, **env, schema.EPOCH: max(last, epoch_reached) + 1,
                  schema.STATUS: schema.STATUS_FAILED, schema.ERROR: error,
                  schema.TIMESTAMP: utc_now()}
        self.write_rows([*sorted(rows, key=lambda r: r[schema.EPOCH]), failed])

    def ok_rows_or_empty(self) -> dict[int, dict[str, Any]]:
        try:
            return self.ok_rows()
        except ResultFileError:
            return {}

    # --- repair ---------------------------------------------------------------------------------

    def repair(self) -> list[str]:
        """Set aside a result file or checkpoint that cannot be read; say what was done.

        An unreadable result file takes the checkpoint with it (the rows of its
        earlier milestones are gone, so the trial restarts from scratch); an
        unreadable checkpoint restarts training from scratch, and the rows it
        re-trains are rewritten.
        """
        notes: list[str] = []
        try:
            self.rows()
        except ResultFileError as exc:
            notes.append(f"{exc}; set aside as {self.set_aside(self.result_path).name}")
            if self.checkpoint_path.exists():
                aside = self.set_aside(self.checkpoint_path)
                notes.append(f"checkpoint set aside as {aside.name}: restarting from scratch")
        problem = checkpoint_problem(self.checkpoint_path)
        if problem:
            aside = self.set_aside(self.checkpoint_path)
            notes.append(f"checkpoint {self.checkpoint_path} is unreadable ({problem}); set "
                         f"aside as {aside.name}: the trial restarts from scratch")
        self.notes.extend(notes)
        return notes

    def set_aside(self, path: Path) -> Path:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        n = 1
        while aside.exists():
            aside = aside.with_name(f"{aside.name}.{n}")
            n += 1
        path.rename(aside)
        return aside

    def _readable_rows(self) -> list[dict[str, Any]]:
        try:
            return self.rows()
        except ResultFileError:
            return []


def checkpoint_problem(path: Path) -> str:
    """Why the checkpoint at `path` cannot be loaded ("" when it is fine or absent)."""
    if not path.exists():
        return ""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()  # reads every member: CRC and length
            if bad is not None:
                return f"member {bad} is damaged"
            if not any(n.startswith("trainer/epoch") for n in z.namelist()):
                return "no trainer/epoch entry"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def utc_now() -> str:
    from suite.common.timestamps import utc_timestamp

    return utc_timestamp()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
