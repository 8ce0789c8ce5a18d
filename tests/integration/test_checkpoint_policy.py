"""The `checkpoints` policy on real tiny runs: delete-when-finished leaves no checkpoint and
rows carry trial_bytes; under last-milestone-only a killed trial still resumes, from its
last milestone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from suite.store import schema
from suite.store.disk import directory_bytes
from suite.store.trial_store import TrialStore
from suite.sweep.loader import load_sweep

GENBENCH = Path(sys.executable).parent / "genbench"
SWEEP = """\
name: ckpt
dataset: mnist
grid: {{epochs: [{milestones}]}}
fixed: {{model: dcgan, upsampling: nearest, latent_dim: 8, batch_size: 32,
         max_train_images: {images}, checkpoints: {policy}}}
eval: {{n_samples: 64, backbones: []}}
"""
START_TIMEOUT_S = 400  # TensorFlow's import and a first epoch on 2 busy cores


def _sweep(tmp_path: Path, milestones: str, images: int, policy: str):
    path = tmp_path / "ckpt.yaml"
    path.write_text(SWEEP.format(milestones=milestones, images=images, policy=policy))
    return path, load_sweep(str(path)).trials[0]


def _run(sweep: Path, out: Path, data_dir: Path, *extra: str) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "cli.txt", "a")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([str(GENBENCH), "run", str(sweep), "--out", str(out), "--data-dir",
                             str(data_dir), "--quiet", *extra], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _ok_epochs(store: TrialStore) -> list[int]:
    try:
        rows = store.rows()
    except Exception:  # noqa: BLE001 - not written yet, or mid-rename on a slow disk
        return []
    return [r[schema.EPOCH] for r in rows if r[schema.STATUS] == schema.STATUS_OK]


def test_delete_when_finished_leaves_no_checkpoint_and_rows_carry_bytes(tmp_path, data_dir):
    # The sweep file says keep; the flag overrides it, and the trial id stays.
    sweep, trial = _sweep(tmp_path, "1, 2", 256, "keep")
    out = tmp_path / "out"
    proc = _run(sweep, out, data_dir, "--checkpoints", "delete-when-finished")
    assert proc.wait(timeout=900) == 0, (out / "cli.txt").read_text()[-3000:]
    store = TrialStore.of(out, trial)
    assert not store.checkpoint_path.exists()
    rows = store.rows()
    assert [r[schema.EPOCH] for r in rows] == [1, 2]
    assert all(r[schema.TRIAL_BYTES] > 0 for r in rows)
    # The last row holds the trial's footprint once finished (its own rewrite aside).
    final = directory_bytes(store.directory)
    assert abs(rows[-1][schema.TRIAL_BYTES] - final) < 2000, (rows[-1][schema.TRIAL_BYTES], final)
    status = subprocess.run([str(GENBENCH), "status", str(out / "ckpt")], capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    disk = [line for line in status.stdout.splitlines() if line.startswith("disk: ")]
    assert len(disk) == 1 and "checkpoints" not in disk[0], status.stdout


def test_last_milestone_only_resumes_a_killed_trial_from_its_milestone(tmp_path, data_dir):
    sweep, trial = _sweep(tmp_path, "2, 12", 512, "last-milestone-only")
    out = tmp_path / "out"
    store = TrialStore.of(out, trial)
    proc = _run(sweep, out, data_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not store.checkpoint_path.exists():
            assert proc.poll() is None, (out / "cli.txt").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.05)
        # The first checkpoint comes after the epoch-2 row (with keep: after epoch 1, before
        # any row).
        assert _ok_epochs(store) == [2]
        os.killpg(proc.pid, signal.SIGKILL)  # a crashed node: no clean-up at all
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with np.load(store.checkpoint_path) as f:
        assert int(f["trainer/epoch"]) == 2
    assert _ok_epochs(store) == [2], "killed too late: the trial had finished"

    again = _run(sweep, out, data_dir)
    assert again.wait(timeout=900) == 0, (out / "cli.txt").read_text()[-3000:]
    rows = store.rows()
    assert [r[schema.EPOCH] for r in rows] == [2, 12]
    assert rows[0][schema.WARMUP_STEPS] == 2 and rows[1][schema.WARMUP_STEPS] == 4  # resumed
    assert rows[1][schema.STEPS] == 12 * (512 // 32)  # epochs 3.. re-trained, counted once
    with np.load(store.checkpoint_path) as f:  # last-milestone-only keeps the final one
        assert int(f["trainer/epoch"]) == 12


def test_an_unknown_policy_stops_before_any_work(tmp_path):
    sweep, _ = _sweep(tmp_path, "1", 256, "keep")
    proc = subprocess.run([str(GENBENCH), "run", str(sweep), "--out", str(tmp_path / "out"),
                           "--checkpoints", "delete"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "--checkpoints: unknown value 'delete'; known: keep, last-milestone-only, " \
           "delete-when-finished" in proc.stderr
    assert not (tmp_path / "out").exists()
