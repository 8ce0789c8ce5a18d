"""Processes and sockets of multi-worker trials, through real `genbench run` processes.

The ranks of a `workers: 2` trial (real MNIST, a few small epochs) must live and
die with the launcher: an interrupted or terminated `genbench run` leaves no rank
and no horovodrun behind, one rank's death stops the other, a SIGKILLed launcher
takes its ranks with it; and nothing a local run (or an embedded Ray) starts
listens beyond loopback.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from suite.ranks.entry import write_launch_file
from suite.ranks.local import run_local_ranks
from suite.store import schema
from suite.store.trial_store import TrialStore
from suite.sweep.loader import load_sweep
from suite.sweep.spec import Trial
from suite.trial.context import RunContext

GENBENCH = Path(sys.executable).parent / "genbench"
SWEEP = """\
name: procs
dataset: mnist
grid: {{epochs: [{milestones}]}}
fixed: {{model: dcgan, workers: 2, batch_size: 32, max_train_images: 512, latent_dim: 16}}
eval: {{n_samples: 64, backbones: []}}
"""
START_TIMEOUT_S = 240  # two TensorFlow imports on 2 busy cores, then the first epoch
GONE_WITHIN_S = 15  # the launcher's grace period (5 s) plus reaping and slack


# --- helpers ---------------------------------------------------------------------------


def write_sweep(tmp_path: Path, milestones: str = "2, 8") -> tuple[Path, Trial]:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(milestones=milestones))
    return path, load_sweep(str(path)).trials[0]


def start_cli(sweep: Path, out: Path, data_dir: Path, *extra: str) -> subprocess.Popen:
    """`genbench run` in its own session (as a shell job is) with SIGINT at its default,
    output in out/cli.txt."""
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "cli.txt", "w")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([str(GENBENCH), "run", str(sweep), "--out", str(out), "--data-dir",
                             str(data_dir), "--quiet", *extra], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=_interruptible)


def _interruptible() -> None:
    """Ctrl-C as in a terminal: a shell running the tests as a background job (`make test &`)
    has SIGINT ignored, every child inherits that, and Python then never raises
    KeyboardInterrupt (the CLI ran on, or finished with 0, under CI started that way)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def ranks_of(pid: int) -> list[psutil.Process]:
    return [p for p in descendants(pid) if "suite.ranks.entry" in cmdline(p)]


def wait_exit(cli: subprocess.Popen, timeout: float, out: Path) -> int:
    """The CLI's exit status; on a timeout, fail with what it said and where every process
    of its tree stands (an intermittent hang after Ctrl-C seen once under load in CI)."""
    try:
        return cli.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        tree = []
        for p in [psutil.Process(cli.pid), *descendants(cli.pid)]:
            try:
                wchan = Path(f"/proc/{p.pid}/wchan").read_text()
                tree.append(f"{p.pid} {p.status()} threads={p.num_threads()} wchan={wchan} "
                            f"{cmdline(p)[:100]}")
            except (psutil.Error, OSError):
                pass
        log = (out / "cli.txt").read_text()[-3000:] if (out / "cli.txt").exists() else ""
        pytest.fail(f"the CLI did not exit within {timeout} s\n" + "\n".join(tree) + "\n" + log)


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(condition: Callable[[], object], timeout_s: float, what: str,
             proc: subprocess.Popen | None = None, out: Path | None = None) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    log = (out / "cli.txt").read_text()[-3000:] if out and (out / "cli.txt").exists() else ""
    pytest.fail(f"timed out waiting for {what}\n{log}")


def training(store: TrialStore) -> Callable[[], bool]:
    """True once the first epoch's checkpoint is written: the ranks are in the train loop."""
    return lambda: store.checkpoint_path.exists()


def assert_all_gone(procs: list[psutil.Process], within_s: float = GONE_WITHIN_S) -> None:
    deadline = time.monotonic() + within_s
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [(p.pid, cmdline(p)[:80]) for p in procs if alive(p)]
    assert not left, f"still running {within_s} s later: {left}"


def kill_leftovers(procs: list[psutil.Process]) -> None:
    for p in procs:
        if alive(p):
            p.kill()


def milestone_rows(store: TrialStore) -> list[int]:
    return sorted(r[schema.EPOCH] for r in store.rows() if r[schema.STATUS] == schema.STATUS_OK)


# --- stopping the launcher stops its ranks ------------------------------------------------


@pytest.mark.parametrize("stop", ["sigterm-while-training", "ctrl-c-while-starting"])
def test_stopped_run_leaves_no_rank_and_resumes(tmp_path, data_dir, stop):
    sweep, trial = write_sweep(tmp_path)
    out = tmp_path / "out"
    store = TrialStore.of(out, trial)
    cli = start_cli(sweep, out, data_dir)
    seen: list[psutil.Process] = []
    try:
        ranks = wait_for(lambda: len(ranks_of(cli.pid)) == 2 and ranks_of(cli.pid),
                         START_TIMEOUT_S, "2 rank processes", cli, out)
        if stop.endswith("while-training"):
            wait_for(training(store), START_TIMEOUT_S, "the first epoch", cli, out)
        seen = descendants(cli.pid)
        # The ranks are genbench's own children: no horovodrun, each in its own session.
        assert not [p for p in seen if "horovodrun" in cmdline(p)]
        assert all(p.ppid() == cli.pid and os.getsid(p.pid) == p.pid for p in ranks)
        if stop.startswith("sigterm"):
            cli.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C: SIGINT to the foreground process group
            os.killpg(cli.pid, signal.SIGINT)
        wait_exit(cli, GONE_WITHIN_S + 30, out)
        assert_all_gone(seen)
    finally:
        kill_leftovers([*seen, psutil.Process(cli.pid)] if cli.poll() is None else seen)
    said = (out / "cli.txt").read_text()
    assert cli.returncode != 0
    assert "re-run" in said and "Traceback" not in said, said[-2000:]

    # A re-run completes the trial, every milestone row exactly once.
    rerun = start_cli(sweep, out, data_dir)
    assert rerun.wait(timeout=600) == 0, (out / "cli.txt").read_text()[-3000:]
    assert milestone_rows(store) == [2, 8]


@pytest.mark.parametrize("killed_rank", [1, 0])
def test_a_dead_rank_stops_the_other(tmp_path, data_dir, killed_rank):
    _, trial = write_sweep(tmp_path, milestones="20")
    ctx = RunContext(out=tmp_path / "out", data_dir=str(data_dir))
    store = TrialStore.of(ctx.out, trial)
    store.directory.mkdir(parents=True)
    write_launch_file(store.directory / "launch.json", trial, ctx)
    killed: dict[str, float] = {}
    ranks: list[psutil.Process] = []

    def kill_one_rank() -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and not store.checkpoint_path.exists():
            time.sleep(0.1)
        ranks.extend(ranks_of(os.getpid()))
        for p in ranks:
            if p.environ().get("HOROVOD_RANK") == str(killed_rank):
                p.kill()
                killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_one_rank, daemon=True)
    killer.start()
    code = run_local_ranks(2, store.directory / "launch.json", store.log_path)
    returned = time.monotonic()
    killer.join(timeout=5)
    assert "at" in killed, f"rank {killed_rank} was not found while training"
    assert code != 0
    assert returned - killed["at"] < GONE_WITHIN_S
    assert len(ranks) == 2
    assert_all_gone(ranks, within_s=1)


@pytest.mark.parametrize("when", ["training", "starting"])
def test_sigkilled_launcher_takes_its_ranks_along(tmp_path, data_dir, when):
    sweep, trial = write_sweep(tmp_path)
    out = tmp_path / "out"
    cli = start_cli(sweep, out, data_dir)
    ranks: list[psutil.Process] = []
    try:
        wait_for(lambda: len(ranks_of(cli.pid)) == 2, START_TIMEOUT_S, "2 ranks", cli, out)
        if when == "training":
            wait_for(training(TrialStore.of(out, trial)), START_TIMEOUT_S, "the first epoch",
                     cli, out)
        ranks = ranks_of(cli.pid)
        cli.kill()  # SIGKILL: no handler runs, only the kernel's PR_SET_PDEATHSIG
        cli.wait(timeout=10)
        assert_all_gone(ranks, within_s=5)
    finally:
        kill_leftovers(ranks)
        if cli.poll() is None:
            cli.kill()


# --- nothing listens beyond loopback ------------------------------------------------------


def listening(pid: int) -> set[tuple[str, str, int]]:
    """(process name, address, port) of every listening socket of `pid` and its descendants."""
    procs = {pid: "genbench"}
    for p in descendants(pid):
        try:
            procs[p.pid] = p.name()
        except psutil.NoSuchProcess:
            pass
    return {(procs[c.pid], c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in procs}


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def listeners_during(cli: subprocess.Popen, out: Path) -> set[tuple[str, str, int]]:
    seen: set[tuple[str, str, int]] = set()
    while cli.poll() is None:
        seen |= listening(cli.pid)
        time.sleep(0.05)
    assert cli.returncode == 0, (out / "cli.txt").read_text()[-3000:]
    return seen


def test_local_ranks_listen_on_loopback_only(tmp_path, data_dir):
    sweep, _ = write_sweep(tmp_path, milestones="2")
    out = tmp_path / "out"
    seen = listeners_during(start_cli(sweep, out, data_dir), out)
    assert seen, "the rendezvous server should have been seen listening"
    assert [s for s in seen if not is_loopback(s[1])] == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
def test_embedded_ray_listens_on_loopback_only(tmp_path, data_dir):
    sweep, _ = write_sweep(tmp_path, milestones="1")
    out = tmp_path / "out"
    seen = listeners_during(start_cli(sweep, out, data_dir, "--launcher", "ray"), out)
    assert {name for name, _, _ in seen} >= {"gcs_server", "raylet"}, seen
    assert [s for s in seen if not is_loopback(s[1])] == []
