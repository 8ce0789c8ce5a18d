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


def latest_jobs(sweep_directory: Path) -> dict[str, SubmittedTrial]:
    """Each trial's most recent job (jobs.json is in submission order)."""
    return {job.trial_id: job for job in read_jobs(sweep_directory)}


def queue_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Slurm state of each job id (`123` or `123_4`): squeue while queued, then sacct
    where accounting is on, then `scontrol show job` (recently finished jobs);
    ids that none of them knows are left out."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    states: dict[str, str] = {}
    out = run_slurm_command(["squeue", "-h", "--array", "-o", "%i|%T", "-j",
                             ",".join(_base_ids(ids))])
    for line in out.splitlines():
        job, _, state = line.partition("|")
        states[job.strip()] = state.strip()
    rest = [j for j in ids if j not in states]
    if rest:  # one query per array job, not per task: a sweep may hold thousands
        out = run_slurm_command(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j",
                    ",".join(_base_ids(rest))])
        for line in out.splitlines():
            job, _, state = line.partition("|")
            if job in rest:
                states[job] = state.split()[0] if state else ""
    for base in _base_ids([j for j in ids if j not in states]):
        states.update(_scontrol_states(run_slurm_command(["scontrol", "show", "job", "-o", base])))
    return {j: states[j] for j in ids if j in states}


def _scontrol_states(text: str) -> dict[str, str]:
    """`123_4` (array task) or `123` -> JobState, from `scontrol show job -o` lines."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        state = fields.get("JobState", "")
        task = fields.get("ArrayTaskId", "")
        if task.isdigit() and fields.get("ArrayJobId"):
            states[f"{fields['ArrayJobId']}_{task}"] = state
        elif task and fields.get("ArrayJobId"):  # pending tasks in one record: 5-9%2 or 3,7
            for index in _task_range(task):
                states[f"{fields['ArrayJobId']}_{index}"] = state
        elif fields.get("JobId"):
            states[fields["JobId"]] = state
    return states


def _task_range(text: str) -> list[int]:
    indices: list[int] = []
    for part in text.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            indices += range(int(low), int(high or low) + 1)
    return indices


def _base_ids(ids: list[str]) -> list[str]:
    return sorted({j.split("_")[0] for j in ids})


def run_slurm_command(command: list[str], timeout_s: float = 30) -> str:
    """stdout of a Slurm command, or "" when it fails (no accounting, job purged, ...)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def describe_jobs(job_ids: list[str], states: dict[str, str]) -> str:
    """One line: how many trial jobs, in how many arrays, in which Slurm states."""
    counts: dict[str, int] = {}
    for job in job_ids:
        state = states.get(job, "left the queue")
        counts[state] = counts.get(state, 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda x: -x[1]))
    return (f"slurm: {len(job_ids)} trial job(s) in {len(_base_ids(job_ids))} job(s)/array(s): "
            f"{parts}")
