"""A sweep's trials as job arrays that fit the cluster's limits (pure maths, plus the reads
of `scontrol show config` and the queue's size; no submitit).

Slurm refuses an array whose largest index is MaxArraySize or more (indices run
0..MaxArraySize-1), or one of more tasks than SchedulerParameters'
max_array_tasks; every task counts against MaxJobCount, like a job. So:

- trials are grouped by `workers` (an array's tasks share one resource request),
  and each group is cut into chunks of at most `tasks_per_array` trials;
- `--array-parallelism K` bounds the trials of one submission that run at once:
  the groups are spread over min(K, groups) lanes, K is shared between the lanes
  in proportion to their trials (each lane at least 1), and the chunks of one
  lane run one after another (chunk j+1 is submitted with
  `--dependency=afterany:<chunk j>`), each with its lane's share as its `%k`;
- trials beyond the free job slots (MaxJobCount minus the jobs queued now) are
  not submitted: the same command, run again later, submits them.
"""

from __future__ import annotations

import heapq
import subprocess
from dataclasses import dataclass

from suite.launchers.slurm_jobs import run_slurm_command

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default
DEFAULT_MAX_JOB_COUNT = 10000


@dataclass(frozen=True)
class ArrayLimits:
    """What `scontrol show config` says about arrays (Slurm's defaults when unreadable)."""

    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE  # array indices must be < this
    max_job_count: int | None = None  # None: not visible
    max_array_tasks: int | None = None  # SchedulerParameters=max_array_tasks=N, if set

    @property
    def tasks_per_array(self) -> int:
        """Trials one array may hold (at least 1: with arrays off, single jobs of 1)."""
        n = self.max_array_size
        if self.max_array_tasks is not None:
            n = min(n, self.max_array_tasks)
        return max(1, n)

    def describe(self) -> str:
        parts = [f"MaxArraySize={self.max_array_size}"]
        if self.max_array_tasks is not None:
            parts.append(f"max_array_tasks={self.max_array_tasks}")
        if self.max_job_count is not None:
            parts.append(f"MaxJobCount={self.max_job_count}")
        return ", ".join(parts)


def parse_slurm_config(text: str) -> ArrayLimits:
    """ArrayLimits from the `Key = value` lines `scontrol show config` prints."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key.strip(), value.strip())
    max_array = _whole(values.get("MaxArraySize"))
    tasks = None
    for item in values.get("SchedulerParameters", "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "max_array_tasks":
            tasks = _whole(value)
    return ArrayLimits(max_array_size=DEFAULT_MAX_ARRAY_SIZE if max_array is None else max_array,
                       max_job_count=_whole(values.get("MaxJobCount")), max_array_tasks=tasks)


def read_array_limits() -> ArrayLimits:
    """The running cluster's limits, read at submit time (Slurm's defaults if scontrol
    cannot tell: sbatch's own refusal then names the limit)."""
    return parse_slurm_config(run_slurm_command(["scontrol", "show", "config"], timeout_s=60))


def count_queued_jobs() -> int | None:
    """Jobs and array tasks the controller holds now (as squeue shows them; None when
    squeue fails). Finished jobs it still remembers (MinJobAge) are not visible."""
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return sum(1 for line in proc.stdout.splitlines() if line.strip())


@dataclass(frozen=True)
class ArrayChunk:
    """One job array to submit: trials (positions in the submission's list), its `%k`,
    and the chunk (position in the plan) whose end it waits for."""

    workers: int
    positions: tuple[int, ...]
    lane: int
    parallelism: int
    after: int | None = None


def plan_chunks(workers: list[int], tasks_per_array: int, parallelism: int) -> list[ArrayChunk]:
    """Chunks for trials with these `workers` (in submission order), in an order that
    submits every chunk after the one it waits for."""
    if tasks_per_array < 1 or parallelism < 1:
        raise ValueError("tasks_per_array and parallelism must be positive")
    groups: dict[int, list[int]] = {}
    for position, w in enumerate(workers):
        groups.setdefault(w, []).append(position)
    if not groups:
        return []
    lanes: list[list[int]] = [[] for _ in range(min(parallelism, len(groups)))]
    # Biggest group first, onto the lane with the fewest trials so far.
    heap = [(0, lane) for lane in range(len(lanes))]
    for w in sorted(groups, key=lambda w: (-len(groups[w]), w)):
        total, lane = heapq.heappop(heap)
        lanes[lane].append(w)
        heapq.heappush(heap, (total + len(groups[w]), lane))
    shares = share_parallelism([sum(len(groups[w]) for w in ws) for ws in lanes], parallelism)
    chunks: list[ArrayChunk] = []
    for lane, ws in enumerate(lanes):
        previous = None
        for w in sorted(ws):
            positions = groups[w]
            for start in range(0, len(positions), tasks_per_array):
                part = tuple(positions[start:start + tasks_per_array])
                chunks.append(ArrayChunk(w, part, lane, min(shares[lane], len(part)), previous))
                previous = len(chunks) - 1
    return chunks


def share_parallelism(sizes: list[int], total: int) -> list[int]:
    """Split `total` running tasks between lanes of `sizes` trials: each lane at least 1
    and at most its size, the rest in proportion to size (largest shortfall first)."""
    if len(sizes) > total:
        raise ValueError(f"{len(sizes)} lanes cannot share {total} running tasks")
    shares = [1] * len(sizes)
    left = total - len(sizes)
    heap = [(-float(size), i) for i, size in enumerate(sizes) if size > 1]
    heapq.heapify(heap)
    while left > 0 and heap:
        _, i = heapq.heappop(heap)
        shares[i] += 1
        left -= 1
        if shares[i] < sizes[i]:
            heapq.heappush(heap, (-sizes[i] / shares[i], i))
    return shares


def _whole(value: str | None) -> int | None:
    if value is None:
        return None
    head = value.split()[0] if value.split() else ""
    return int(head) if head.isdigit() else None
