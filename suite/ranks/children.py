"""Child processes that live and die together with the launcher that started them.

Each child gets its own session (so a terminal's Ctrl-C or a job scheduler's
signal to the launcher's group does not reach it half-way: the launcher
decides), and asks the kernel to signal it when the launcher dies
(PR_SET_PDEATHSIG), so that a SIGKILLed launcher leaves no orphan behind.
When one child fails, or the launcher is interrupted, every child's process
group gets SIGTERM, then SIGKILL after a grace period, and is reaped.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRACE_S = 5.0  # between SIGTERM and SIGKILL
POLL_S = 0.1


def _child_setup(sig: int, cpus: Collection[int] | None = None) -> Callable[[], None]:
    """A preexec_fn: ask the kernel for `sig` when the parent dies (Linux only), and
    bind the child to `cpus` (all its threads inherit it, TensorFlow's pools included).

    libc is loaded here, in the parent: the child, between fork and exec, only
    calls into it. The parent's pid check closes the race of a parent that died
    before the prctl call.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: children may outlive a killed launcher
        prctl = None
    parent = os.getpid()
    cores = set(cpus) if cpus else None

    def set_up_child() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)
        if cores is not None:
            os.sched_setaffinity(0, cores)

    return set_up_child


def exit_status(code: int) -> int:
    """A child's status as a shell shows it: 128 + N for death by signal N."""
    return 128 - code if code < 0 else code


class ChildGroup:
    """Start children, wait for all of them, stop all of them on the first failure.

    Use as a context manager: leaving it by an exception (KeyboardInterrupt
    included) stops and reaps every child before the exception propagates.
    PDEATHSIG is tied to the thread that forks, so start children from a thread
    that outlives them (the launcher's main thread).
    """

    def __init__(self, log: IO[bytes], death_signal: int = signal.SIGKILL,
                 grace_s: float = GRACE_S) -> None:
        self.log, self.death_signal, self.grace_s = log, death_signal, grace_s
        self.children: list[subprocess.Popen] = []

    def __enter__(self) -> ChildGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, argv: Sequence[str], env: Mapping[str, str],
              cwd: Path | str | None = None,
              cpus: Collection[int] | None = None) -> subprocess.Popen:
        """Start one child; `cpus` binds it to those cores (None: the launcher's own)."""
        child = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=self.log, stderr=subprocess.STDOUT,
                                 start_new_session=True,
                                 preexec_fn=_child_setup(self.death_signal, cpus))
        self.children.append(child)
        return child

    def wait(self) -> int:
        """0 once every child exited 0; else the first failure's status, the others stopped."""
        while True:
            codes = [c.poll() for c in self.children]
            failed = [code for code in codes if code not in (None, 0)]
            if failed:
                self.stop()
                return exit_status(failed[0])
            if all(code == 0 for code in codes):
                return 0
            time.sleep(POLL_S)

    def stop(self) -> None:
        """SIGTERM to every child's process group, SIGKILL after the grace period, reap all."""
        try:
            self._signal_groups(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            while any(c.poll() is None for c in self.children) and time.monotonic() < deadline:
                time.sleep(POLL_S)
        finally:  # a second interrupt during the grace period only shortens it
            self._signal_groups(signal.SIGKILL)
            for c in self.children:
                c.wait()

    def _signal_groups(self, sig: int) -> None:
        for c in self.children:
            # A reaped child's pid may be reused: only signal groups of live children
            # (their session id is their pid, as start_new_session made them leaders).
            if c.poll() is None:
                try:
                    os.killpg(c.pid, sig)
                except ProcessLookupError:
                    pass
