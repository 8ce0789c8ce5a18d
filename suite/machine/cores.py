"""The cores a process may use (its affinity, so cpusets and Slurm allocations count)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its affinity honours cpusets and Slurm allocations)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
