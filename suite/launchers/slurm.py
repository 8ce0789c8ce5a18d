"""Slurm launcher: one job-array task per trial, through submitit.

Trials are grouped by `workers` (the tasks of one array share their resource
request) and each group becomes one `executor.map_array` job array. A trial
with `workers: N` asks for N Slurm tasks (one per Horovod rank) on
ceil(N / workers_per_node) nodes; submitit's srun starts `SlurmTrialTask` in
every task, which rendezvous by themselves (see
`suite.training.distributed.setup_horovod_from_slurm`) and run the trial; rank
0 writes the results store.

Preemption and time limits: submitit signals the job before killing it and
calls `SlurmTrialTask.checkpoint`, which requeues the same trial. The trainer
checkpoints every epoch and result rows are keyed by epoch, so a requeued trial
(by submitit, or by `scontrol requeue`) resumes from its last finished epoch
and no milestone row is lost or written twice.

submitit is imported only here (`pip install genbench[slurm]`). Every submitted
job is recorded in `<sweep dir>/slurm/jobs.json`, which `genbench status` reads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from suite.environment import THREADS_ENV, utc_timestamp
from suite.errors import GenbenchError, SpecError
from suite.events import TRIAL_END, TRIAL_START, Event, EventSink
from suite.launchers.base import Launcher
from suite.results import is_finished, sweep_dir, write_json_atomic
from suite.schema import STATUS_FAILED
from suite.spec import Trial
from suite.worker import RunContext, TrialResult, outcome_from_store, stored_state, trial_label

SLURM_DIR = "slurm"  # under the sweep directory: jobs.json and submitit's logs/
JOBS_FILE = "jobs.json"
LOGS_DIR = "logs"
# Slurm states in which a job will still run (or runs): the trial is not over.
ACTIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
                 "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "PREEMPTED", "SIGNALING", "STAGE_OUT")


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60  # wall-time limit per job; a trial that hits it is requeued and resumes
    gpus_per_worker: int = 0
    cpus_per_worker: int = 1
    workers_per_node: int | None = None  # ranks per node (default: all of a trial's on one node)
    array_parallelism: int = 64  # array tasks running at once
    account: str | None = None
    qos: str | None = None
    mem_gb: float | None = None  # per node
    setup: tuple[str, ...] = ()  # shell lines run in the batch script before srun
    folder: str | None = None  # submitit's pickles and logs (default <sweep dir>/slurm/logs)
    max_requeues: int = 3  # time-outs a trial may be requeued after (preemptions are free)
    poll_s: float = 10.0  # `launch` (blocking) polls the queue this often


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


class SlurmError(GenbenchError):
    """Slurm or submitit is missing, or sbatch refused the jobs."""


class TrialFailedError(RuntimeError):
    """Raised by a rank whose trial failed, so its Slurm task exits non-zero."""


class SlurmTrialTask:
    """What every Slurm task of a trial runs (all ranks): picklable, checkpointable.

    submitit calls `checkpoint` on rank 0 when the job is preempted or about to
    time out; the returned submission (the same trial) is requeued, and the
    trial resumes from the checkpoint its trainer writes every epoch.
    """

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def __call__(self, trial: Trial) -> TrialResult:
        # A single-rank trial uses the cores Slurm gave its task, not the whole node's.
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        if cpus.isdigit():
            os.environ.setdefault(THREADS_ENV, cpus)
        from suite.rank_main import run_rank

        result = run_rank(trial, self.ctx)
        if result.status == STATUS_FAILED:
            raise TrialFailedError(f"trial {trial.trial_id} failed: {result.error}")
        return result

    def checkpoint(self, trial: Trial) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, trial)


def node_layout(workers: int, workers_per_node: int | None) -> tuple[int, int]:
    """(nodes, tasks per node) for a trial of `workers` ranks."""
    per_node = min(workers, workers_per_node or workers)
    nodes = math.ceil(workers / per_node)
    if nodes * per_node != workers:
        raise SpecError("--workers-per-node", str(workers_per_node),
                        f"{workers} workers do not split evenly into nodes of {per_node}",
                        "pick a workers_per_node that divides every trial's workers")
    return nodes, per_node


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise SlurmError("the Slurm launcher needs submitit, which is not installed\n"
                         "  fix: pip install 'genbench[slurm]'   (the `slurm` extra; "
                         "`make install` includes it)") from None
    return submitit


def check_slurm_commands() -> None:
    missing = [c for c in ("sbatch", "srun", "squeue") if shutil.which(c) is None]
    if missing:
        raise SlurmError(f"Slurm commands not found on PATH: {', '.join(missing)}\n"
                         "  fix: run on a Slurm login node, or start the one-node test cluster: "
                         "slurm/local-cluster.sh start")


class SlurmLauncher(Launcher):
    name = "slurm"
    options_type = SlurmOptions

    def submit(self, trials: Iterable[Trial], ctx: RunContext) -> list[SubmittedTrial]:
        """Submit the unfinished trials as job arrays and return at once."""
        submitit = import_submitit()
        check_slurm_commands()
        trials = [t for t in trials if not is_finished(stored_state(t, ctx))]
        if not trials:
            return []
        ctx = dataclasses.replace(ctx, out=Path(ctx.out).resolve())  # tasks may start elsewhere
        sweep = trials[0].sweep
        folder = Path(self.options.folder or sweep_dir(ctx.out, sweep) / SLURM_DIR / LOGS_DIR)
        folder = folder.resolve()
        task = SlurmTrialTask(ctx)
        submitted: list[SubmittedTrial] = []
        groups: dict[int, list[Trial]] = {}
        for t in sorted(trials, key=lambda t: t.index):
            groups.setdefault(t.workers, []).append(t)
        for workers, group in sorted(groups.items()):
            executor = submitit.SlurmExecutor(folder=folder, python=sys.executable,
                                              max_num_timeout=self.options.max_requeues)
            executor.update_parameters(**self._parameters(sweep, workers))
            try:
                jobs = executor.map_array(task, group)
            except Exception as exc:  # submitit wraps sbatch's message
                raise SlurmError(f"sbatch refused the job array of {len(group)} trial(s) with "
                                 f"workers={workers}: {exc}") from None
            now = utc_timestamp()
            submitted += [SubmittedTrial(t.trial_id, t.index, t.workers, t.milestones,
                                         str(job.job_id), str(folder), now)
                          for t, job in zip(group, jobs, strict=True)]
        record_jobs(sweep_dir(ctx.out, sweep), submitted)
        return submitted

    def _parameters(self, sweep: str, workers: int) -> dict[str, Any]:
        o = self.options
        nodes, per_node = node_layout(workers, o.workers_per_node)
        params: dict[str, Any] = {
            "job_name": f"genbench-{sweep}",
            "time": o.time_min,
            "nodes": nodes,
            "ntasks_per_node": per_node,
            "cpus_per_task": o.cpus_per_worker,
            "array_parallelism": o.array_parallelism,
            "setup": list(o.setup),
            # One rank failing must stop the others, which would wait in a collective.
            "srun_args": ["--kill-on-bad-exit=1"],
            "additional_parameters": {"requeue": True},
            "stderr_to_stdout": True,
        }
        if o.gpus_per_worker:
            params["gpus_per_node"] = o.gpus_per_worker * per_node
        for name in ("partition", "account", "qos"):
            if getattr(o, name):
                params[name] = getattr(o, name)
        if o.mem_gb:
            params["mem"] = o.mem_gb
        return params

    def _launch(self, trials: list[Trial], ctx: RunContext,
                on_event: EventSink) -> list[TrialResult]:
        """Submit, then wait until every trial's job has left the queue."""
        submitted = {s.trial_id: s for s in self.submit(trials, ctx)}
        for t in trials:
            if t.trial_id in submitted:
                on_event(Event(TRIAL_START, t.trial_id, trial_label(t), epochs=t.epochs))
        while True:
            states = queue_states([s.job_id for s in submitted.values()])
            if not any(state in ACTIVE_STATES for state in states.values()):
                break
            time.sleep(self.options.poll_s)
        results = []
        for t in trials:
            job = submitted.get(t.trial_id)
            if job is None:  # finished before: submit skipped it
                results.append(TrialResult(t.trial_id, stored_state(t, ctx), skipped=True))
                continue
            result = outcome_from_store(t, ctx, f"the Slurm job {job.job_id} ended before the "
                                                f"trial finished; see its log in {job.log_folder}")
            on_event(Event(TRIAL_END, t.trial_id, trial_label(t), epoch=t.epochs,
                           epochs=t.epochs, status=result.status, message=result.error))
            results.append(result)
        return results


# --- jobs.json and the queue (no submitit needed) ------------------------------------------


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
    jobs = json.loads(path.read_text())["jobs"]
    return [SubmittedTrial(**{**j, "milestones": tuple(j["milestones"])}) for j in jobs]


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
