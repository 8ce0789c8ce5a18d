"""A trial's Horovod ranks as one srun step of the Slurm allocation this process runs in.

The sbatch template runs `genbench run SWEEP --trial-index I` in the batch step,
which goes through the launcher lifecycle and starts the W ranks here with
`srun --ntasks=W ... python -m suite.ranks.entry LAUNCH_JSON`. Every task then
finds itself in an srun step and rendezvous with the others through a file in
the trial directory (suite.ranks.entry, suite.ranks.slurm_env). srun runs in
its own session and gets SIGTERM (which it forwards to the tasks) when this
process is interrupted, fails or dies.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

from suite.common.errors import GenbenchError
from suite.ranks.children import ChildGroup
from suite.ranks.local import inherited_env, rank_command
from suite.ranks.slurm_env import expand_tasks_per_node

SRUN_GRACE_S = 15.0  # srun forwards SIGTERM and waits for its tasks; give it time


def allocation_tasks(env: Mapping[str, str]) -> int:
    """Tasks of the Slurm allocation (SLURM_NTASKS, else the sum of tasks per node)."""
    value = env.get("SLURM_NTASKS", "")
    if value.isdigit():
        return int(value)
    try:
        return sum(expand_tasks_per_node(env.get("SLURM_TASKS_PER_NODE", "")))
    except ValueError:
        return 0


def inside_slurm_allocation(workers: int, env: Mapping[str, str] = os.environ) -> bool:
    """True in a batch script (or salloc shell) whose allocation has >= `workers` tasks.

    False outside Slurm and inside an srun step (only srun sets
    SLURM_STEP_NUM_TASKS): a step's task cannot start another step of the
    allocation's size.
    """
    if not env.get("SLURM_JOB_ID") or "SLURM_STEP_NUM_TASKS" in env:
        return False
    return allocation_tasks(env) >= workers


def srun_command(workers: int, launch_file: Path, env: Mapping[str, str]) -> list[str]:
    srun = shutil.which("srun", path=env.get("PATH"))
    if srun is None:
        raise GenbenchError("srun not found on PATH, but this process runs in a Slurm "
                            "allocation\n  fix: load Slurm's client commands, or run with "
                            "--launcher local --ranks local")
    # srun does not pass the job's --cpus-per-task on by itself in every Slurm version.
    return [srun, f"--ntasks={workers}", f"--cpus-per-task={env.get('SLURM_CPUS_PER_TASK', '1')}",
            "--kill-on-bad-exit=1", *rank_command(launch_file)]


def run_srun_ranks(workers: int, launch_file: Path, log_path: Path,
                   timeline: Path | None = None) -> int:
    """Run the trial in `launch_file` as a `workers`-task srun step; srun's exit status.

    Output of every task is appended to `log_path`; `timeline` asks Horovod for
    a timeline (HOROVOD_TIMELINE, exported to the tasks).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    env = inherited_env()
    if timeline is not None:
        env["HOROVOD_TIMELINE"] = str(timeline)
    command = srun_command(workers, launch_file, env)
    with open(log_path, "ab") as log, ChildGroup(log, death_signal=signal.SIGTERM,
                                                 grace_s=SRUN_GRACE_S) as step:
        step.start(command, env)
        return step.wait()

