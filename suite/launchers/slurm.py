"""Slurm launcher: one job-array task per trial, through submitit.

Trials are grouped by `workers` (the tasks of one array share their resource
request) and each group becomes `executor.map_array` job arrays that fit the
cluster's MaxArraySize, chained so that `--array-parallelism` bounds the whole
submission (suite/launchers/slurm_arrays.py). A re-submission skips trials that
are finished or still queued. A trial
with `workers: N` asks for N Slurm tasks (one per Horovod rank) on
ceil(N / workers_per_node) nodes; submitit's srun starts `SlurmTrialTask` in
every task, which rendezvous by themselves (see
`suite.ranks.entry` and `suite.ranks.slurm_env`) and run the trial; rank
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
import math
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from suite.common.errors import GenbenchError, SpecError
from suite.common.events import EventSink, ignore_event
from suite.common.timestamps import utc_timestamp
from suite.launchers.base import Launcher, TrialTracker
from suite.launchers.options import option
from suite.launchers.slurm_arrays import (
    ArrayLimits,
    count_queued_jobs,
    plan_chunks,
    read_array_limits,
)
from suite.launchers.slurm_jobs import (
    ACTIVE_STATES,
    LOGS_DIR,
    SLURM_DIR,
    SubmittedTrial,
    latest_jobs,
    queue_states,
    record_jobs,
)
from suite.machine.threads import THREADS_ENV
from suite.store.results import sweep_dir
from suite.store.schema import STATUS_FAILED
from suite.sweep.spec import Trial
from suite.trial.context import RunContext, TrialResult


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = option(None, "Slurm partition (default: the cluster's default)")
    time_min: int = option(60, "time limit per trial job, minutes; a trial that hits it is "
                               "requeued and resumes from its last epoch", flag="--time",
                           metavar="MIN")
    gpus_per_worker: int = option(0, "GPUs per worker", metavar="G")
    cpus_per_worker: int = option(1, "CPUs per worker", metavar="C")
    workers_per_node: int | None = option(None, "Horovod ranks per node (default: all of a "
                                                "trial's on one node)", metavar="W")
    overcommit: bool = option(False, "let a node's ranks share its CPUs (sbatch --overcommit): "
                                     "asks for N tasks on the nodes instead of W per node, for "
                                     "nodes with fewer CPUs than ranks")
    array_parallelism: int = option(64, "trials of one submission running at once, over all "
                                        "its job arrays", metavar="K")
    account: str | None = option(None, "Slurm account")
    qos: str | None = option(None, "Slurm quality of service")
    mem_gb: float | None = option(None, "memory per node, GB", metavar="M")
    setup: tuple[str, ...] = option((), "shell line run in the job before the trial "
                                        "(repeatable), e.g. 'module load cuda'", metavar="CMD")
    folder: str | None = option(None, "submitit's pickles and logs (default: <sweep dir>/slurm/"
                                      "logs)", metavar="DIR")
    max_requeues: int = option(3, "time-outs a trial may be requeued after (preemptions are "
                                  "free)", metavar="N")
    poll_s: float = option(10.0, "seconds between queue polls while `run --launcher slurm` "
                                 "waits", metavar="S")


class SlurmError(GenbenchError):
    """Slurm or submitit is missing, or sbatch refused the jobs."""


class QueueFullError(SlurmError):
    """No free job slot under MaxJobCount."""


@dataclasses.dataclass(frozen=True)
class SlurmSubmission:
    """What one `submit` did: the jobs it submitted and the trials it left alone."""

    jobs: tuple[SubmittedTrial, ...]  # submitted now
    queued: tuple[SubmittedTrial, ...] = ()  # skipped: an earlier job of theirs is queued
    finished: int = 0  # skipped: finished in the store
    deferred: tuple[str, ...] = ()  # trial ids not submitted: no free job slots
    arrays: int = 0
    limits: ArrayLimits = ArrayLimits()
    log_folder: str = ""

    def describe(self) -> str:
        text = f"submitted {len(self.jobs)} trial(s)"
        if self.jobs:
            text += (f" as {self.arrays} job array(s) of at most {self.limits.tasks_per_array} "
                     f"({self.limits.describe()})")
        skipped = [f"{n} {what}" for n, what in ((self.finished, "finished"),
                                                 (len(self.queued), "already queued")) if n]
        if skipped:
            text += f"; skipped {', '.join(skipped)}"
        if self.deferred:
            text += (f"; {len(self.deferred)} not submitted: the queue has no free job slot "
                     f"under MaxJobCount={self.limits.max_job_count}; run the same command "
                     "again when jobs have ended")
        return text + f"; logs in {self.log_folder or '-'}"


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
        from suite.ranks.entry import run_rank

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

    def check(self, trials: Iterable[Trial]) -> None:
        import_submitit()  # clear errors first: submitit and Slurm's commands are there
        check_slurm_commands()
        if self.options.array_parallelism < 1:
            raise SpecError("command line", "--array-parallelism",
                            f"must be at least 1, got {self.options.array_parallelism}",
                            "give the number of trials that may run at once, e.g. 64")
        for t in trials:
            node_layout(t.workers, self.options.workers_per_node)

    def submit(self, trials: Iterable[Trial], ctx: RunContext,
               on_event: EventSink = ignore_event) -> SlurmSubmission:
        """Submit the unfinished trials as job arrays and return at once (finished trials
        are reported skipped, as `launch` does; queued ones are left to their jobs)."""
        trials = list(trials)
        self.check(trials)
        todo = TrialTracker(ctx, on_event).skip_finished(trials)
        return dataclasses.replace(self._submit(todo, ctx), finished=len(trials) - len(todo))

    def _submit(self, trials: list[Trial], ctx: RunContext) -> SlurmSubmission:
        submitit = import_submitit()
        if not trials:
            return SlurmSubmission(())
        ctx = dataclasses.replace(ctx, out=Path(ctx.out).resolve())  # tasks may start elsewhere
        sweep = trials[0].sweep
        directory = sweep_dir(ctx.out, sweep)
        folder = Path(self.options.folder or directory / SLURM_DIR / LOGS_DIR).resolve()
        queued = self._still_queued(trials, directory)
        todo = sorted((t for t in trials if t.trial_id not in queued), key=lambda t: t.index)
        limits = read_array_limits() if todo else ArrayLimits()
        todo, deferred = _fit_job_count(todo, limits)
        chunks = plan_chunks([t.workers for t in todo], limits.tasks_per_array,
                             self.options.array_parallelism)
        task = SlurmTrialTask(ctx)
        submitted: list[SubmittedTrial] = []
        array_ids: list[str] = []
        try:
            for chunk in chunks:
                group = [todo[p] for p in chunk.positions]
                after = None if chunk.after is None else array_ids[chunk.after]
                executor = submitit.SlurmExecutor(folder=folder, python=sys.executable,
                                                  max_num_timeout=self.options.max_requeues)
                executor.update_parameters(**self._parameters(sweep, chunk.workers,
                                                              chunk.parallelism, after))
                try:
                    jobs = executor.map_array(task, group)
                except Exception as exc:  # submitit wraps sbatch's message
                    raise SlurmError(f"sbatch refused the job array of {len(group)} trial(s) "
                                     f"with workers={chunk.workers} ({limits.describe()}): "
                                     f"{exc}") from None
                array_ids.append(str(jobs[0].job_id).split("_")[0])
                now = utc_timestamp()
                submitted += [SubmittedTrial(t.trial_id, t.index, t.workers, t.milestones,
                                             str(job.job_id), str(folder), now)
                              for t, job in zip(group, jobs, strict=True)]
        finally:  # what was submitted is recorded, even when a later array was refused
            if submitted:
                record_jobs(directory, submitted)
        return SlurmSubmission(tuple(submitted), tuple(queued.values()),
                               deferred=tuple(t.trial_id for t in deferred),
                               arrays=len(chunks), limits=limits, log_folder=str(folder))

    def _still_queued(self, trials: list[Trial], directory: Path) -> dict[str, SubmittedTrial]:
        """Trials whose latest recorded job is still pending or running."""
        wanted = {t.trial_id for t in trials}
        latest = {tid: job for tid, job in latest_jobs(directory).items() if tid in wanted}
        states = queue_states(job.job_id for job in latest.values())
        return {tid: job for tid, job in latest.items() if states.get(job.job_id) in ACTIVE_STATES}

    def _parameters(self, sweep: str, workers: int, parallelism: int,
                    after: str | None = None) -> dict[str, Any]:
        o = self.options
        nodes, per_node = node_layout(workers, o.workers_per_node)
        params: dict[str, Any] = {
            "job_name": f"genbench-{sweep}",
            "time": o.time_min,
            "nodes": nodes,
            "cpus_per_task": o.cpus_per_worker,
            "array_parallelism": parallelism,
            "setup": list(o.setup),
            # One rank failing must stop the others, which would wait in a collective.
            "srun_args": ["--kill-on-bad-exit=1"],
            "additional_parameters": {"requeue": True,
                                      **({"dependency": f"afterany:{after}"} if after else {})},
            "stderr_to_stdout": True,
        }
        if o.overcommit:  # Slurm refuses --ntasks-per-node above a node's CPUs, even with -O;
            # -N M -n N -O places N/M tasks on each node (block distribution).
            params["additional_parameters"].update(ntasks=workers, overcommit=True)
        else:
            params["ntasks_per_node"] = per_node
        if o.gpus_per_worker:
            params["gpus_per_node"] = o.gpus_per_worker * per_node
        for name in ("partition", "account", "qos"):
            if getattr(o, name):
                params[name] = getattr(o, name)
        if o.mem_gb:
            params["mem"] = o.mem_gb
        return params

    def _start(self, trials: list[Trial], ctx: RunContext, tracker: TrialTracker) -> None:
        """Submit, then follow every job (of every array, and those an earlier submission
        queued); trials beyond MaxJobCount are submitted as jobs end. Each trial ends
        when its job has left the queue."""
        by_id = {t.trial_id: t for t in trials}
        waiting, pending = list(trials), {}
        while waiting or pending:
            if waiting:
                try:
                    submission = self._submit(waiting, ctx)
                except QueueFullError:
                    if not pending:
                        raise
                else:
                    for job in (*submission.jobs, *submission.queued):
                        pending[job.trial_id] = job
                        tracker.start(by_id[job.trial_id])
                    waiting = [by_id[i] for i in submission.deferred]
            states = queue_states([s.job_id for s in pending.values()])
            for trial_id, job in list(pending.items()):
                if states.get(job.job_id) not in ACTIVE_STATES:
                    del pending[trial_id]
                    tracker.end(by_id[trial_id],
                                problem=f"the Slurm job {job.job_id} ended before the trial "
                                        f"finished; see its log in {job.log_folder}",
                                # Slurm ended every process of the job, wherever it ran.
                                holder_dead=lambda h, job=job: h.slurm_job == job.job_id)
            if pending or waiting:
                time.sleep(self.options.poll_s)


def _fit_job_count(trials: list[Trial], limits: ArrayLimits) -> tuple[list[Trial], list[Trial]]:
    """(the trials that fit in the free job slots, the rest); every array task is a job."""
    if limits.max_job_count is None or not trials:
        return trials, []
    queued = count_queued_jobs()
    if queued is None:
        return trials, []
    free = limits.max_job_count - queued
    if free <= 0:
        raise QueueFullError(f"Slurm holds {queued} jobs and MaxJobCount is "
                             f"{limits.max_job_count}: no job can be submitted now\n"
                             "  fix: run the same command again when jobs have ended")
    return trials[:free], trials[free:]
