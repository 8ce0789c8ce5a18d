"""Slurm jobs of a sweep: jobs.json (what was submitted) and the queue (what runs).

No submitit needed: `genbench status` and the Slurm launcher's wait loop use it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from suite.common.atomic import write_json_atomic

SLURM_DIR = "slurm"  # under the sweep directory: jobs.json and submitit's logs/
JOBS_FILE = "jobs.json"
LOGS_DIR = "logs"
# Slurm states in which a job will still run (or runs): the trial is not over.
ACTIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
                 "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "PREEMPTED", "SIGNALING", "STAGE_OUT")


@dataclasses.dataclass(frozen=True)
class SubmittedTrial:
    """One trial's Slurm job, as recorded in jobs.json."""

    trial_id: str
    trial_index: int
    workers: int
    milestones: tuple[int, ...]
    job_id: str  # `123_4` for array task 4 of array job 123, or `123`
    log_folder: str
    submitted_at: str


def jobs_file(sweep_directory: Path) -> Path:
    return Path(sweep_directory) / SLURM_DIR / JOBS_FILE


def record_jobs(sweep_directory: Path, submitted: list[SubmittedTrial]) -> None:
    """Append to jobs.json (a re-submission adds newer jobs for the same trials)."""
    path = jobs_file(sweep_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    jobs = [*read_jobs(sweep_directory), *submitted]
    write_json_atomic(path, {"jobs": [{**dataclasses.asdict(j), "milestones": list(j.milestones)}
                                      for j in jobs]})


def read_jobs(sweep_directory: Path) -> list[SubmittedTrial]:
    path = jobs_file(sweep_directory)
    if not path.exists():
        return []
    try:
        jobs = json.loads(path.read_text())["jobs"]
        return [SubmittedTrial(**{**j, "milestones": tuple(j["milestones"])}) for j in jobs]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        import warnings

        warnings.warn(f"ignoring {path}: unreadable ({type(exc).__name__}: {str(exc)[:80]})",
                      stacklevel=2)
        return []


def queue_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Slurm state of each job id (`123` or `123_4`): squeue while queued, then sacct
    where accounting is on, then `scontrol show job` (recently finished jobs);
    ids that none of them knows are left out."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    states: dict[str, str] = {}
    out = _run(["squeue", "-h", "--array", "-o", "%i|%T", "-j", ",".join(_base_ids(ids))])
    for line in out.splitlines():
        job, _, state = line.partition("|")
        states[job.strip()] = state.strip()
    rest = [j for j in ids if j not in states]
    if rest:
        out = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(rest)])
        for line in out.splitlines():
            job, _, state = line.partition("|")
            if job in rest:
                states[job] = state.split()[0] if state else ""
    for job in [j for j in ids if j not in states]:
        out = _run(["scontrol", "show", "job", "-o", job])
        for field in out.split():
            if field.startswith("JobState="):
                states[job] = field.split("=", 1)[1]
                break
    return {j: states[j] for j in ids if j in states}


def _base_ids(ids: list[str]) -> list[str]:
    return sorted({j.split("_")[0] for j in ids})


def _run(command: list[str]) -> str:
    """stdout of a Slurm command, or "" when it fails (no accounting, job purged, ...)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""
