"""A sweep larger than MaxArraySize on a real Slurm: chained chunks, one --array-parallelism.

Its own one-node cluster (slurm/local-cluster.sh in a separate GENBENCH_SLURM_DIR,
own ports) started with `--max-array-size 2`, so the shared cluster of the other
Slurm tests keeps Slurm's default limits. Five tiny trials become arrays of 2, 2
and 1 (the last a plain job), each waiting for the one before; with
`--array-parallelism 1` no two trials of the sweep ever run at once, though the
node has two CPUs. A re-submission skips the queued trials, `run --launcher slurm`
follows every chunk's jobs to the end, and `status` reports them all.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from status_table import rows_of_jobs

from suite.store import schema
from suite.store.trial_store import TrialStore
from suite.sweep.loader import load_sweep

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "slurm" / "local-cluster.sh"
BIN = Path(sys.executable).parent
GENBENCH = str(BIN / "genbench")
MAX_ARRAY_SIZE = 2
TRIALS = 5
CLUSTER = {"GENBENCH_SLURM_DIR": "/var/lib/genbench-slurm-arrays",
           "GENBENCH_SLURMCTLD_PORT": "6837", "GENBENCH_SLURMD_PORT": "6838"}
SWEEP = f"""\
name: slurm-chunks
dataset: mnist
grid: {{seed: {list(range(TRIALS))}}}
fixed: {{model: dcgan, upsampling: nearest, latent_dim: 8, batch_size: 32,
         max_train_images: 256, epochs: 1}}
eval: {{n_samples: 64, backbones: []}}
"""
RUN_TIMEOUT_S = 1800  # five trials one after another on a loaded 2-core machine


@pytest.fixture(scope="module")
def small_arrays(tmp_path_factory):
    """A one-node cluster with MaxArraySize=2, beside (not instead of) the shared one."""
    env = {**os.environ, **CLUSTER}
    try:
        proc = subprocess.run([str(CLUSTER_SCRIPT), "start", "--max-array-size",
                               str(MAX_ARRAY_SIZE)], capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL, env=env)
        problem = "" if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem:
        reason = f"a one-node Slurm cluster with MaxArraySize=2 cannot start: {problem}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield {**env, "SLURM_CONF": f"{CLUSTER['GENBENCH_SLURM_DIR']}/slurm.conf",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(CLUSTER_SCRIPT), "stop"], capture_output=True, timeout=120, env=env)


def _genbench(args: list[str], env: dict, cwd: Path, timeout: float = 600):
    return subprocess.run([GENBENCH, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _queue(env: dict, fields: str) -> list[list[str]]:
    proc = subprocess.run(["squeue", "-h", "-r", "-o", fields], capture_output=True, text=True,
                          env=env)
    return [line.split() for line in proc.stdout.splitlines() if line.strip()]


def test_sweep_beyond_max_array_size_runs_as_chained_chunks(small_arrays, tmp_path, data_dir):
    env = small_arrays
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                            env=env).stdout
    assert f"MaxArraySize            = {MAX_ARRAY_SIZE}" in config
    sweep = tmp_path / "chunks.yaml"
    sweep.write_text(textwrap.dedent(SWEEP))
    out = tmp_path / "out"
    common = [str(sweep), "--out", str(out), "--data-dir", str(data_dir), "--partition",
              "debug", "--time", "15", "--array-parallelism", "1"]
    sub = _genbench(["submit", *common, "--checkpoints", "delete-when-finished"], env, tmp_path)
    assert sub.returncode == 0, sub.stderr[-3000:]
    jobs = [line.split("\t")[0] for line in sub.stdout.splitlines() if "\ttrial " in line]
    bases = list(dict.fromkeys(j.split("_")[0] for j in jobs))
    assert len(jobs) == TRIALS and len(bases) == 3, sub.stdout
    assert [sum(j.split("_")[0] == b for j in jobs) for b in bases] == [2, 2, 1]
    assert jobs[-1] == bases[-1]  # a chunk of one trial is a plain job
    assert f"at most {MAX_ARRAY_SIZE} (MaxArraySize={MAX_ARRAY_SIZE}" in sub.stderr
    # Chunk k+1 waits for chunk k (seen while it is still queued).
    waits = {row[0].split("_")[0]: row[1] for row in _queue(env, "%i %E")}
    for before, after in zip(bases, bases[1:], strict=False):
        if after in waits and waits[after] != "(null)":
            assert re.search(rf"afterany:{before}(?!\d)", waits[after]), waits

    again = _genbench(["submit", *common], env, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "\ttrial " not in again.stdout and "submitted 0 trial(s)" in again.stderr
    assert "already queued" in again.stderr, again.stderr

    running: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the most trials of the sweep Slurm ever runs at once
        while not done.is_set():
            running.append(sum(1 for row in _queue(env, "%i %T") if row[1] == "RUNNING"))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:  # follows the queued jobs of every chunk; submits nothing new
        follow = _genbench(["run", *common, "--launcher", "slurm", "--poll-s", "2", "--quiet"],
                           env, tmp_path, timeout=RUN_TIMEOUT_S)
    finally:
        done.set()
        watcher.join()
    assert follow.returncode == 0, follow.stdout[-3000:] + follow.stderr[-3000:]
    assert max(running) == 1, running  # --array-parallelism 1 over all three chunks
    assert not _queue(env, "%i")

    trials = load_sweep(str(sweep)).trials
    for trial in trials:
        store = TrialStore.of(out, trial)
        rows = store.rows()
        assert [(r[schema.EPOCH], r[schema.STATUS]) for r in rows] == [(1, "ok")], trial.index
        assert rows[0][schema.TRIAL_BYTES] > 0
        assert not store.checkpoint_path.exists()  # delete-when-finished, from the job's trial
    status = _genbench(["status", str(out / "slurm-chunks")], env, tmp_path, timeout=120)
    assert status.returncode == 0, status.stderr
    rows = rows_of_jobs(status.stdout, jobs)
    assert len(rows) == TRIALS and all(row["state"] == "ok" for row in rows), status.stdout
    assert f"slurm: {TRIALS} trial job(s) in 3 job(s)/array(s)" in status.stdout
    assert "disk: " in status.stdout and "checkpoints" not in status.stdout.split("disk: ")[1]
