"""A trial's Horovod ranks as processes on this host, started by genbench itself.

No horovodrun: this process starts Horovod's rendezvous server on 127.0.0.1,
then `workers` copies of `python -m suite.ranks.entry LAUNCH_JSON`, each with the
variables horovodrun would set (Gloo on the loopback interface, so nothing
listens beyond this host), each in its own session and signalled when this
process dies. One failing rank stops the others (they would wait in a
collective for ever); an interrupt stops them all (suite.ranks.children).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from suite.ranks.children import ChildGroup
from suite.ranks.core_binding import RANK_CORES_ENV, available_cores, split_cores
from suite.ranks.env import (
    LOOPBACK,
    RANK_PLACE_VARS,
    horovod_env,
    host_plan,
)
from suite.ranks.network import USER_IFACE_ENV, choose_interface

LOCAL_HOST = "localhost"  # the plan's host name, as in `horovodrun -H localhost:N`


def rank_command(launch_file: Path) -> list[str]:
    return [sys.executable, "-m", "suite.ranks.entry", str(launch_file)]


def inherited_env() -> dict[str, str]:
    """This process's environment without a rank's place (Horovod's, an srun step's) of
    its own; Horovod's tuning variables pass through to the ranks."""
    return {k: v for k, v in os.environ.items()
            if k not in RANK_PLACE_VARS and not k.startswith("SLURM_STEP")}


def run_local_ranks(workers: int, launch_file: Path, log_path: Path,
                    timeline: Path | None = None, bind: bool = True) -> int:
    """Run the trial in `launch_file` as `workers` local ranks; their exit status (0: all ok).

    Output of every rank is appended to `log_path`. `timeline` asks Horovod for
    a Chrome-trace timeline of every collective (HOROVOD_TIMELINE). `bind` gives
    each rank its own block of cores (suite.ranks.core_binding) when there
    are enough.
    """
    return run_local_command(rank_command(launch_file), workers, log_path, timeline, bind)


def run_local_command(argv: Sequence[str], workers: int, log_path: Path,
                      timeline: Path | None = None, bind: bool = True) -> int:
    """Run `argv` as `workers` Horovod ranks on this host (what run_local_ranks does)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from suite.training.horovod import start_rendezvous, stop_rendezvous

    plan = host_plan([(LOCAL_HOST, workers)])
    port = start_rendezvous(plan, bind_address=LOOPBACK)
    # The user's $HOROVOD_GLOO_IFACE if set (each rank checks it exists), else `lo`.
    iface = choose_interface(LOOPBACK, {k: v for k, v in os.environ.items()
                                        if k == USER_IFACE_ENV})
    base = {k: v for k, v in inherited_env().items() if k != RANK_CORES_ENV}
    blocks = split_cores(available_cores(), workers) if bind else None
    try:
        with open(log_path, "ab") as log, ChildGroup(log) as ranks:
            for slot in plan:
                env = {**base, **horovod_env(slot, LOOPBACK, port, iface, timeline)}
                cpus = blocks[slot.local_rank] if blocks else None
                if cpus:
                    env[RANK_CORES_ENV] = str(len(cpus))
                ranks.start(argv, env, cpus=cpus)
            return ranks.wait()
    finally:
        stop_rendezvous(port)
