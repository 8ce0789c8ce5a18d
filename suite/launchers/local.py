"""Local launcher: trials one after another on this machine (or in this Slurm allocation).

Single-worker trials run in this process. A trial with `workers: N > 1` runs
as N Horovod ranks: on this host, started by genbench itself in their own
process group and rendezvousing on loopback (suite.ranks.local), or,
inside an sbatch allocation with enough tasks (slurm/sweep.sbatch), as an srun
step (suite.ranks.srun). Either way the launcher waits for the ranks
and the lifecycle reads the outcome from the store.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

from suite.common.errors import SpecError
from suite.launchers.base import Launcher, TrialTracker
from suite.launchers.options import option
from suite.machine.cores import usable_cores
from suite.ranks.core_binding import BIND_CHOICES
from suite.ranks.entry import LAUNCH_FILE, write_launch_file
from suite.store.trial_store import TrialStore
from suite.sweep.spec import Trial
from suite.trial.context import RunContext
from suite.trial.run import run_trial

RANKS_CHOICES = ("auto", "local", "srun")
LOG_TAIL_CHARS = 4000


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    timeline: bool = option(False, "write a Horovod timeline (timeline.json) for "
                                   "multi-worker trials")
    ranks: str = option("auto", "how multi-worker trials start their ranks: local (processes "
                                "on this host), srun (a step of the enclosing Slurm "
                                "allocation), auto (srun inside an sbatch allocation with "
                                "enough tasks, else local)", metavar="HOW")

    bind: str = option("cores", "where local ranks of a multi-worker trial run: cores (each on "
                                "its own equal block of this host's cores, as mpirun "
                                "--bind-to core), none (wherever the OS puts them)",
                       metavar="HOW")

    def __post_init__(self) -> None:
        if self.bind not in BIND_CHOICES:
            raise SpecError("--launcher local", "bind", f"unknown value {self.bind[:40]!r}",
                            f"use one of: {', '.join(BIND_CHOICES)}")
        if self.ranks not in RANKS_CHOICES:
            raise SpecError("--launcher local", "ranks", f"unknown value {self.ranks[:40]!r}",
                            f"use one of: {', '.join(RANKS_CHOICES)}")


class LocalLauncher(Launcher):
    name: ClassVar[str] = "local"
    options_type: ClassVar[type] = LocalOptions

    def _uses_srun(self, workers: int) -> bool:
        from suite.ranks.srun import inside_slurm_allocation

        if self.options.ranks == "auto":
            return inside_slurm_allocation(workers, os.environ)
        return self.options.ranks == "srun"

    def check(self, trials: Sequence[Trial]) -> None:
        """Ranks started on this host must fit its cores (one core each at least)."""
        cores = usable_cores()
        for t in trials:
            if t.workers > 1 and not self._uses_srun(t.workers) and t.workers > cores:
                raise SpecError(
                    "--launcher local", "workers",
                    f"trial {t.index} ({t.trial_id}) has workers: {t.workers}, but the local "
                    f"launcher runs every rank on this host, which has {cores} usable cores",
                    f"use workers <= {cores} here, or run it across nodes with --launcher ray "
                    "(--address) or slurm")

    def _start(self, trials: list[Trial], ctx: RunContext, tracker: TrialTracker) -> None:
        for t in trials:
            tracker.start(t)
            if t.workers == 1:
                tracker.end(t, result=run_trial(t, ctx, on_event=tracker.sink))
            else:
                self._run_ranks(t, ctx, tracker)

    def _run_ranks(self, trial: Trial, ctx: RunContext, tracker: TrialTracker) -> None:
        store = TrialStore.of(ctx.out, trial)
        store.directory.mkdir(parents=True, exist_ok=True)
        launch_file = store.directory / LAUNCH_FILE
        write_launch_file(launch_file, trial, ctx)
        timeline = store.directory / "timeline.json" if self.options.timeline else None
        if self._uses_srun(trial.workers):
            from suite.ranks.srun import run_srun_ranks

            how = "srun"
            code = run_srun_ranks(trial.workers, launch_file, store.log_path, timeline)
        else:
            from suite.ranks.local import run_local_ranks

            how = "the local ranks"
            code = run_local_ranks(trial.workers, launch_file, store.log_path, timeline,
                                   bind=self.options.bind == "cores")
        log = store.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] \
            if store.log_path.exists() else ""
        tracker.end(trial, problem=f"{how} exited with code {code} before the trial finished; "
                                   f"see {store.log_path}", detail=log)
