"""Child process groups (suite.ranks.children) and the loopback rendezvous server,
with real short-lived processes (`sleep`, small Python programs); no TensorFlow."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from suite.ranks.children import ChildGroup, exit_status
from suite.ranks.env import host_plan

PY = sys.executable
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_all_children_exit_zero(tmp_path) -> None:
    with open(tmp_path / "log", "ab") as log, ChildGroup(log) as group:
        for word in ("a", "b"):
            group.start([PY, "-c", f"print({word!r})"], os.environ)
        assert group.wait() == 0
    assert sorted((tmp_path / "log").read_text().split()) == ["a", "b"]


@pytest.mark.parametrize("failing, status", [
    ([PY, "-c", "import sys; sys.exit(3)"], 3),
    ([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], 128 + 9),
])
def test_one_failing_child_stops_the_others(tmp_path, failing, status) -> None:
    with open(tmp_path / "log", "ab") as log, ChildGroup(log, grace_s=1) as group:
        sleeper = group.start(["sleep", "60"], os.environ)
        stubborn = group.start([PY, "-c", IGNORE_TERM], os.environ)  # needs SIGKILL
        group.start(failing, os.environ)
        start = time.monotonic()
        assert group.wait() == status
        assert time.monotonic() - start < 10
    assert sleeper.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL


def test_interrupt_stops_every_child_and_propagates(tmp_path) -> None:
    # Python's own SIGINT handler, whatever an earlier test's library (Ray, TF) installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    children = []
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        with open(tmp_path / "log", "ab") as log, ChildGroup(log, grace_s=1) as group:
            children += [group.start(["sleep", "60"], os.environ) for _ in range(2)]
            # Each child leads its own session: a terminal's SIGINT to our group misses it.
            assert all(os.getsid(c.pid) == c.pid for c in children)
            timer.start()
            group.wait()
    signal.signal(signal.SIGINT, previous)
    assert all(c.returncode is not None for c in children)


@pytest.mark.parametrize("death_signal", [signal.SIGKILL, signal.SIGTERM])
def test_children_die_with_a_sigkilled_parent(tmp_path, death_signal) -> None:
    # The parent starts a `sleep` child through ChildGroup, prints its pid, then waits.
    parent_code = textwrap.dedent(f"""
        import os, sys
        from suite.ranks.children import ChildGroup
        with open(os.devnull, "ab") as log:
            group = ChildGroup(log, death_signal={int(death_signal)})
            print(group.start(["sleep", "60"], os.environ).pid, flush=True)
            group.wait()
    """)
    parent = subprocess.Popen([PY, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert not gone(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


def test_exit_status_reads_like_a_shell() -> None:
    assert exit_status(0) == 0 and exit_status(2) == 2 and exit_status(-15) == 143


@pytest.mark.skipif(importlib.util.find_spec("horovod") is None, reason="needs Horovod")
def test_rendezvous_listens_on_the_given_address_only() -> None:
    from suite.training.horovod import start_rendezvous, stop_rendezvous

    port = start_rendezvous(host_plan([("localhost", 2)]), bind_address="127.0.0.1")
    try:
        mine = [c.laddr for c in psutil.Process().net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert [a.ip for a in mine] == ["127.0.0.1"]
        import urllib.request

        # Horovod's rendezvous protocol answers on it (an unknown key is a 404).
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/global/nothing", timeout=5)
        assert err.value.code == 404
    finally:
        stop_rendezvous(port)
    assert not [c for c in psutil.Process().net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
