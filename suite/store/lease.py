"""A trial's lease: at most one set of processes trains a trial at a time.

The lease is a small JSON file in the trial directory, created with O_EXCL
(atomic on local disks and on the NFS versions clusters use, where fcntl locks
are often unreliable). The holder refreshes its mtime from a daemon thread; a
holder that dies stops refreshing, so its lease goes stale and is taken over:

- at once when the holder ran on this host and its process is gone (pid and
  process start time, so a reused pid does not count as alive), or when it ran
  on another node as this same Slurm job (requeued: Slurm runs a job once at a time);
- after `ttl_s` without a heartbeat otherwise (another host that died).

Taking over renames the stale file away first (only one taker wins the
rename) and then creates a fresh lease with O_EXCL, so two takers never both
hold it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LEASE_TTL_ENV = "GENBENCH_LEASE_TTL"  # seconds without a heartbeat before a lease is stale
DEFAULT_TTL_S = 90.0


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease: enough to tell, from anywhere, whether it is still alive."""

    host: str
    pid: int
    start_ticks: int  # the process's start time (/proc), against pid reuse
    slurm_job: str  # "" outside Slurm; a requeued job keeps its id
    token: str
    since: float

    def describe(self) -> str:
        job = f", Slurm job {self.slurm_job}" if self.slurm_job else ""
        return f"pid {self.pid} on {self.host}{job}"


def this_holder() -> LeaseHolder:
    return LeaseHolder(host=socket.gethostname(), pid=os.getpid(),
                       start_ticks=process_start_ticks(os.getpid()), slurm_job=slurm_job_id(),
                       token=uuid.uuid4().hex, since=time.time())


def slurm_job_id(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    array = env.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    return env.get("SLURM_JOB_ID", "")


def _proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat fields after the command name (which may hold spaces), or []."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_start_ticks(pid: int) -> int:
    """Start time of `pid` in clock ticks since boot (0 when unknown, e.g. not Linux)."""
    fields = _proc_stat(pid)
    return int(fields[19]) if len(fields) > 19 else 0  # field 22 of stat


def process_alive(pid: int, start_ticks: int) -> bool:
    """Running (not a zombie), and the same process that took the lease."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return False
    return not start_ticks or process_start_ticks(pid) in (0, start_ticks)


def ttl_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(LEASE_TTL_ENV, DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


class TrialLease:
    """Non-blocking: `acquire()` is True when this process now holds the lease."""

    def __init__(self, path: Path, ttl_s: float | None = None) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_seconds() if ttl_s is None else ttl_s
        self.holder: LeaseHolder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read_holder(self) -> tuple[LeaseHolder | None, float]:
        """The current holder (None if unreadable) and the lease file's age in seconds."""
        try:
            age = time.time() - self.path.stat().st_mtime
            data = json.loads(self.path.read_text())
            return LeaseHolder(**data), age
        except FileNotFoundError:
            raise
        except (OSError, ValueError, TypeError):
            return None, age

    def is_stale(self, holder: LeaseHolder | None, age: float) -> bool:
        me = this_holder() if self.holder is None else self.holder
        if holder is None:  # half-written by a holder that died at once, or garbage
            return age > 5.0
        if holder.host == me.host:
            return not process_alive(holder.pid, holder.start_ticks)
        if holder.slurm_job and holder.slurm_job == me.slurm_job:
            return True  # this job was requeued: Slurm never runs it twice at once
        return age > self.ttl_s

    def live_holder(self) -> LeaseHolder | None:
        """Who holds the lease right now, if anybody alive does (never this process)."""
        try:
            holder, age = self.read_holder()
        except FileNotFoundError:
            return None
        if holder is None or self.is_stale(holder, age) or holder.pid == os.getpid():
            return None
        return holder

    def acquire(self, same_job_wait_s: float = 120.0) -> bool:
        """Take the lease if it is free or stale. A live holder that is this same Slurm
        job (a requeued job whose old process is still exiting) is waited for, up to
        `same_job_wait_s`, and then taken over: Slurm runs a job once at a time."""
        me = this_holder()
        deadline = time.monotonic() + same_job_wait_s
        for _ in range(3):
            if self._create(me):
                self.holder = me
                self._start_heartbeat()
                return True
            try:
                holder, age = self.read_holder()
            except FileNotFoundError:
                continue  # released meanwhile: try again
            while (not self.is_stale(holder, age) and holder is not None and me.slurm_job
                   and holder.slurm_job == me.slurm_job and time.monotonic() < deadline):
                time.sleep(0.5)
                try:
                    holder, age = self.read_holder()
                except FileNotFoundError:
                    holder, age = None, float("inf")
            same_job = holder is not None and me.slurm_job and holder.slurm_job == me.slurm_job
            if not self.is_stale(holder, age) and not same_job:
                return False
            self._take_over(holder)
        return False

    def break_dead(self, holder: LeaseHolder) -> None:
        """Remove `holder`'s lease, which the caller knows is dead though its heartbeat may
        look fresh (e.g. Ray reported its node lost): a re-run need not wait out `ttl_s`."""
        self._take_over(holder)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.holder is not None:
            with contextlib.suppress(FileNotFoundError, OSError, ValueError, TypeError):
                holder, _ = self.read_holder()
                if holder is not None and holder.token == self.holder.token:
                    self.path.unlink()
        self.holder = None

    def __enter__(self) -> TrialLease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _create(self, me: LeaseHolder) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(asdict(me)).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _take_over(self, stale: LeaseHolder | None) -> None:
        """Move the stale lease aside; if a fresh one was grabbed by mistake, put it back."""
        aside = self.path.with_name(f"{self.path.name}.stale.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = LeaseHolder(**json.loads(aside.read_text()))
        except (OSError, ValueError, TypeError):
            moved = None
        if stale is not None and moved is not None and moved.token != stale.token:
            with contextlib.suppress(OSError):  # another taker's live lease: restore it
                os.link(aside, self.path)
        with contextlib.suppress(OSError):
            aside.unlink()

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        interval = max(0.5, self.ttl_s / 6)

        def beat() -> None:
            while not self._stop.wait(interval):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        self._thread = threading.Thread(target=beat, name="genbench-lease", daemon=True)
        self._thread.start()
