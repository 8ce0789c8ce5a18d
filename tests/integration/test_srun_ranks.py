"""Ranks of a `workers: 2` trial as an srun step of an sbatch allocation, on the real
one-node Slurm cluster (slurm/local-cluster.sh): `genbench run` in the batch step
starts them with srun, and they stop when it is terminated or killed.

Skips when the cluster cannot start (e.g. not root), fails instead under CI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from suite.store import schema
from suite.store.trial_store import TrialStore
from suite.sweep.loader import load_sweep

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "slurm" / "local-cluster.sh"
BIN = Path(sys.executable).parent
SWEEP = """\
name: srun
dataset: mnist
fixed: {model: dcgan, workers: 2, batch_size: 32, max_train_images: 512, epochs: 8,
        latent_dim: 16}
eval: {n_samples: 64, backbones: []}
"""
JOB = """\
#!/bin/bash
{python} -c "from suite.ranks.srun import inside_slurm_allocation as f; \
print('inside allocation:', f(2))"
exec {genbench} run {sweep} --out {out} --data-dir {data} --quiet
"""
START_TIMEOUT_S = 300


@pytest.fixture
def cluster_env(slurm_env):
    return slurm_env


def step_processes(trial_dir: Path) -> list[psutil.Process]:
    """srun and the ranks of this trial (their command lines name its launch file)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if str(trial_dir) in line and ("suite.ranks.entry" in line or "srun" in line):
            found.append(p)
    return found


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signal_name", ["TERM", "KILL"])
def test_signalled_batch_step_stops_its_srun_ranks(tmp_path, data_dir, cluster_env, signal_name):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    trial = load_sweep(str(sweep)).trials[0]
    store = TrialStore.of(tmp_path / "out", trial)
    job = tmp_path / "job.sh"
    job.write_text(JOB.format(python=sys.executable, genbench=BIN / "genbench", sweep=sweep,
                              out=tmp_path / "out", data=data_dir))
    submitted = subprocess.run(["sbatch", "--parsable", "--ntasks=2", "-o",
                                str(tmp_path / "job.out"), str(job)], capture_output=True,
                               text=True, env=cluster_env, cwd=tmp_path, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not store.checkpoint_path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        output = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
        assert store.checkpoint_path.exists(), f"the ranks did not train\n{output[-3000:]}"
        assert "inside allocation: True" in output
        procs = step_processes(store.directory)
        ranks = [p for p in procs if "suite.ranks.entry" in " ".join(p.cmdline())
                 and "srun" not in p.name()]
        assert len(ranks) == 2, [p.cmdline() for p in procs]  # the srun step's two tasks
        # The batch step only (the exec'd `genbench run`), as a scheduler's signal to it.
        subprocess.run(["scancel", "--batch", f"--signal={signal_name}", job_id],
                       env=cluster_env, check=True, timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p.cmdline() for p in procs if alive(p)]
    finally:
        subprocess.run(["scancel", job_id], env=cluster_env, capture_output=True, timeout=30)
    ok = [r for r in store.rows() if r[schema.STATUS] == schema.STATUS_OK] \
        if store.result_path.exists() else []
    assert ok == []  # stopped before its only milestone
