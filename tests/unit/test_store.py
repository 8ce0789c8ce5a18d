"""The results store survives damaged files and concurrent owners (no TensorFlow, no training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from suite.store import schema
from suite.store.lease import LeaseHolder, TrialLease, this_holder
from suite.store.states import STATE_CORRUPT, STATE_MISSING, STATE_PARTIAL, rows_to_state
from suite.store.status import sweep_status
from suite.store.trial_store import TrialStore, checkpoint_problem

BASE = {schema.SCHEMA_VERSION_COL: 1, schema.SWEEP: "s", schema.TRIAL_ID: "abc",
        schema.TRIAL_INDEX: 0}


def ok_row(epoch: int) -> dict:
    return {**BASE, schema.EPOCH: epoch, schema.STATUS: schema.STATUS_OK,
            schema.TIMESTAMP: "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def store(tmp_path) -> TrialStore:
    s = TrialStore(tmp_path, "s", "abc")
    s.directory.mkdir(parents=True)
    return s


def write_checkpoint(path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{"model/0": np.ones(1000), "trainer/epoch": np.asarray(1)})


# --- one definition of a trial's state ------------------------------------------------------


@pytest.mark.parametrize("rows, checkpoint, state", [
    ([], False, STATE_MISSING),
    ([], True, STATE_PARTIAL),
    ([(1, "ok")], False, STATE_PARTIAL),
    ([(1, "ok"), (2, "ok")], False, schema.STATUS_OK),
    ([(1, "ok"), (2, "failed")], False, schema.STATUS_FAILED),
    ([(1, "ok"), (2, "diverged")], False, schema.STATUS_DIVERGED),
])
def test_rows_to_state(rows, checkpoint, state):
    assert rows_to_state(rows, [1, 2], has_checkpoint=checkpoint) == state


# --- damaged store files ----------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"not parquet at all", b"PAR1" + b"\0" * 64 + b"PAR1", b""])
def test_garbage_result_file_is_a_state_then_set_aside_with_the_checkpoint(store, garbage):
    store.result_path.write_bytes(garbage)
    write_checkpoint(store.checkpoint_path)
    assert store.state([1, 2]) == STATE_CORRUPT
    notes = store.repair()
    assert any(str(store.result_path) in n for n in notes)
    assert not store.result_path.exists() and not store.checkpoint_path.exists()
    aside = sorted(p.name for p in store.directory.iterdir())
    assert any(n.startswith("result.parquet.corrupt-") for n in aside)
    assert any(n.startswith("checkpoint.npz.corrupt-") for n in aside)
    assert store.state([1, 2]) == STATE_MISSING  # restarts from scratch


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_checkpoint_is_named_and_set_aside(store, damage):
    store.write_rows([ok_row(1)])
    write_checkpoint(store.checkpoint_path)
    data = store.checkpoint_path.read_bytes()
    if damage == "truncate":
        store.checkpoint_path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        store.checkpoint_path.write_bytes(os.urandom(len(data)))
    else:  # a flipped byte inside the array data: the zip CRC catches it
        i = data.index(b"\x00\x00\xf0?")
        store.checkpoint_path.write_bytes(data[:i] + b"\x01" + data[i + 1:])
    assert checkpoint_problem(store.checkpoint_path)
    notes = store.repair()
    assert len(notes) == 1 and str(store.checkpoint_path) in notes[0]
    assert not store.checkpoint_path.exists()
    assert store.ok_rows() == {1: store.ok_rows()[1]}  # the rows are kept


def test_good_checkpoint_and_rows_are_left_alone(store):
    store.write_rows([ok_row(1)])
    write_checkpoint(store.checkpoint_path)
    assert checkpoint_problem(store.checkpoint_path) == ""
    assert store.repair() == []
    assert store.checkpoint_path.exists() and store.state([1, 2]) == STATE_PARTIAL


def test_failure_rows_carry_the_trial_process_environment_not_the_callers(store):
    store.write_environment({schema.HOSTNAME: "gpu-node-7", schema.DEVICE: "gpu: H100 x4",
                             "not_a_column": 1})
    store.write_rows([ok_row(1)])
    store.record_failure(BASE, "ranks exited with code 1", "log tail")
    rows = store.rows()
    assert [r[schema.STATUS] for r in rows] == ["ok", "failed"]
    assert rows[-1][schema.HOSTNAME] == "gpu-node-7"
    assert rows[-1][schema.DEVICE] == "gpu: H100 x4"
    assert rows[-1][schema.EPOCH] == 2
    assert store.error_path.read_text() == "log tail"


# --- status never crashes or shrinks ---------------------------------------------------------


@pytest.mark.parametrize("config", [b"{not json", b"\xff\xfe\x00garbage", None, b"[1, 2]"])
def test_status_lists_every_trial_whatever_its_config(tmp_path, config):
    sweep = tmp_path / "s"
    good = TrialStore(tmp_path, "s", "good")
    good.directory.mkdir(parents=True)
    good.write_config({"index": 0, "workers": 1, "milestones": [1], "trial_id": "good"})
    good.write_rows([{**ok_row(1), schema.TRIAL_ID: "good"}])
    bad = TrialStore(tmp_path, "s", "bad")
    bad.directory.mkdir(parents=True)
    if config is not None:
        (bad.directory / "config.json").write_bytes(config)
    row = {**ok_row(1), schema.TRIAL_ID: "bad", schema.CONFIG_JSON: json.dumps(
        {"index": 1, "workers": 2, "milestones": [1, 3]})}
    bad.write_rows([row])
    states = {s.trial_id: s for s in sweep_status(sweep)}
    assert set(states) == {"good", "bad"}
    assert states["good"].state == "ok"
    assert states["bad"].state == STATE_PARTIAL and states["bad"].milestones == (1, 3)
    assert states["bad"].index == 1


def test_status_survives_a_garbage_result_file(tmp_path):
    store = TrialStore(tmp_path, "s", "x")
    store.directory.mkdir(parents=True)
    store.write_config({"index": 0, "workers": 1, "milestones": [1]})
    store.result_path.write_bytes(b"garbage")
    (status,) = sweep_status(tmp_path / "s")
    assert status.state == STATE_CORRUPT and "unreadable" in status.note


# --- the lease ---------------------------------------------------------------------------------


def test_lease_is_exclusive_and_released(tmp_path):
    first, second = TrialLease(tmp_path / "lease.json"), TrialLease(tmp_path / "lease.json")
    assert first.acquire()
    holder = subprocess.run(
        [sys.executable, "-c", "import sys; from suite.store.lease import TrialLease; "
         f"sys.exit(0 if TrialLease({str(tmp_path / 'lease.json')!r}).acquire() else 3)"],
        capture_output=True, text=True)
    assert holder.returncode == 3, holder.stderr  # another live process on this host holds it
    first.release()
    assert not (tmp_path / "lease.json").exists()
    assert second.acquire()
    second.release()


def test_lease_of_a_dead_process_is_taken_over_at_once(tmp_path):
    path = tmp_path / "lease.json"
    proc = subprocess.run(
        [sys.executable, "-c", "import os; from suite.store.lease import TrialLease; "
         f"l = TrialLease({str(path)!r}); assert l.acquire(); os._exit(0)"])  # dies holding it
    assert proc.returncode == 0 and path.exists()
    lease = TrialLease(path)
    assert lease.live_holder() is None
    assert lease.acquire()
    lease.release()


def _write_holder(path: Path, **changes) -> None:
    holder = {**this_holder().__dict__, **changes}
    path.write_text(json.dumps(holder))


def test_lease_of_another_host_expires_after_its_ttl(tmp_path):
    path = tmp_path / "lease.json"
    _write_holder(path, host="other-node", pid=1, slurm_job="")
    assert not TrialLease(path, ttl_s=60).acquire()  # fresh heartbeat: alive
    old = time.time() - 120
    os.utime(path, (old, old))
    lease = TrialLease(path, ttl_s=60)
    assert lease.acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lease.release()


def test_requeued_slurm_job_takes_over_its_own_lease_at_once(tmp_path, monkeypatch):
    path = tmp_path / "lease.json"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    _write_holder(path, host="other-node", pid=1, slurm_job="4242")
    assert TrialLease(path, ttl_s=600).acquire()


def test_heartbeat_keeps_a_long_run_alive(tmp_path):
    path = tmp_path / "lease.json"
    lease = TrialLease(path, ttl_s=1.2)
    assert lease.acquire()
    before = path.stat().st_mtime
    time.sleep(0.8)
    assert path.stat().st_mtime > before
    lease.release()


def test_half_written_lease_is_stale_only_when_old(tmp_path):
    path = tmp_path / "lease.json"
    path.write_text("{")
    assert not TrialLease(path).acquire()
    old = time.time() - 60
    os.utime(path, (old, old))
    assert TrialLease(path).acquire()


def test_holder_is_plain_data():
    holder = this_holder()
    assert LeaseHolder(**json.loads(json.dumps(holder.__dict__))) == holder


def test_requeued_job_waits_for_its_old_process_on_the_same_host(tmp_path, monkeypatch):
    path = tmp_path / "lease.json"
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    old = subprocess.Popen(
        [sys.executable, "-c", "import time; from suite.store.lease import TrialLease; "
         f"l = TrialLease({str(path)!r}); assert l.acquire(); print('held', flush=True); "
         "time.sleep(2)"], stdout=subprocess.PIPE, text=True)
    assert old.stdout.readline().strip() == "held"
    other_job = TrialLease(path)
    monkeypatch.setenv("SLURM_JOB_ID", "778")
    assert not other_job.acquire()  # another job: busy, no waiting
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    started = time.monotonic()
    lease = TrialLease(path)
    assert lease.acquire(same_job_wait_s=30)
    assert time.monotonic() - started < 25 and old.wait(timeout=10) == 0
    lease.release()


def test_readers_never_see_a_file_being_replaced(store):
    """A run rewrites result.parquet (temp file + rename) while `genbench show`, status
    or a notebook reads it: every read gets one whole file, never a mix of two (reading
    by path, pyarrow opened the path twice and failed on a quarter of such reads)."""
    import threading
    import warnings

    from analysis.load import load_results
    from suite.store.results import read_rows, write_rows

    versions = [[{**ok_row(e), schema.EPOCHS: n} for e in range(1, n + 1)] for n in (1, 40, 3, 200)]
    write_rows(store.result_path, versions[0])
    stop = threading.Event()

    def rewrite() -> None:
        i = 0
        while not stop.is_set():
            write_rows(store.result_path, versions[i % len(versions)])
            i += 1

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        sizes = set()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # load_results warns on an unreadable file
            for _ in range(150):
                sizes.add(len(read_rows(store.result_path)))
                sizes.add(len(load_results(store.directory.parent.parent, deduplicate=False)))
    finally:
        stop.set()
        writer.join()
    assert sizes <= {1, 40, 3, 200} and len(sizes) > 1  # whole versions, and it did change
