"""Which cores each local rank runs on: disjoint, equal blocks, as `mpirun --bind-to core`.

Unbound ranks on a busy host migrate between cores and share them unevenly,
so one rank's step runs late and every other rank waits for it in the
step's allreduce. Binding each rank to its own block of the cores this
launcher may use (its affinity, which honours cpusets and Slurm allocations)
keeps the ranks equal. srun binds its tasks itself (`--cpu-bind`); this is
for ranks genbench starts on its own host.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from suite.machine.threads import RANK_CORES_ENV

BIND_CHOICES = ("cores", "none")
__all__ = ["BIND_CHOICES", "RANK_CORES_ENV", "available_cores", "describe_cores", "split_cores"]


def available_cores() -> list[int]:
    """The cores this process may run on, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def split_cores(cores: Sequence[int], ranks: int) -> list[tuple[int, ...]] | None:
    """`ranks` disjoint, contiguous blocks of len(cores) // ranks cores each, or None.

    None when there are fewer cores than ranks (binding would stack ranks on a
    core). Equal blocks, because the slowest rank sets every step's pace; the
    remainder of an uneven split stays free for the launcher and the OS.
    """
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    share = len(cores) // ranks
    if share < 1:
        return None
    ordered = sorted(cores)
    return [tuple(ordered[i * share:(i + 1) * share]) for i in range(ranks)]


def describe_cores(cores: Sequence[int]) -> str:
    """'0-3' or '0,2,5': the cores as `taskset -c` writes them."""
    ordered = sorted(cores)
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(str(c) for c in ordered)
