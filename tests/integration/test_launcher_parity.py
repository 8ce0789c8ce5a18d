"""Every launcher goes through one lifecycle, so one sweep gives the same rows whichever
starts it: the local launcher, Ray Tune, Slurm (submitit, `run --launcher slurm`) and the
plain sbatch template. Timing and environment columns aside, the rows are equal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.load import load_results
from suite.store import schema

REPO = Path(__file__).resolve().parents[2]
SBATCH_TEMPLATE = REPO / "slurm" / "sweep.sbatch"
SWEEP = """\
name: parity
dataset: mnist
fixed: {model: dcgan, upsampling: nearest, latent_dim: 8, batch_size: 32,
        max_train_images: 128}
grid: {epochs: [1, 2]}
eval: {n_samples: 32, backbones: [domain]}
"""
KEYS = [schema.TRIAL_ID, schema.TRIAL_INDEX, schema.EPOCH, schema.STATUS, schema.WORKERS,
        schema.N_TRAIN, schema.N_REAL, schema.N_FAKE, schema.PARAMS_TOTAL]
VALUES = [schema.LOSS_G, schema.LOSS_D, schema.FD_DOMAIN, schema.KID_DOMAIN,
          schema.PRECISION_DOMAIN, schema.RECALL_DOMAIN, schema.SPECTRAL_DISTANCE,
          schema.CHECKERBOARD_SCORE]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "parity.yaml"
    path.write_text(SWEEP)
    return path


def run_env(base: dict | None = None) -> dict:
    # One intra-op thread everywhere: reductions then add up in the same order.
    return {**(base or os.environ), "GENBENCH_INTRA_OP_THREADS": "1"}


def genbench_run(sweep: Path, out: Path, data_dir: Path, *extra: str, env=None) -> None:
    proc = subprocess.run([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                           str(out), "--data-dir", str(data_dir), "--quiet", *extra],
                          capture_output=True, text=True, env=run_env(env), timeout=900,
                          cwd=sweep.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]


def rows(out: Path) -> pd.DataFrame:
    df = load_results(out / "parity")
    return df.sort_values([schema.TRIAL_INDEX, schema.EPOCH]).reset_index(drop=True)


def assert_same_rows(expected: pd.DataFrame, got: pd.DataFrame, who: str) -> None:
    assert got[KEYS].astype(str).values.tolist() == expected[KEYS].astype(str).values.tolist(), \
        who
    np.testing.assert_allclose(got[VALUES].to_numpy(float), expected[VALUES].to_numpy(float),
                               rtol=1e-5, atol=1e-7, err_msg=who)


@pytest.fixture(scope="module")
def local_rows(sweep_file, tmp_path_factory, data_dir, eval_cache) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("local")
    genbench_run(sweep_file, out, data_dir)
    df = rows(out)
    assert list(df[schema.EPOCH]) == [1, 2] and set(df[schema.STATUS]) == {"ok"}
    return df


def test_ray_gives_the_local_rows(local_rows, sweep_file, tmp_path, data_dir):
    genbench_run(sweep_file, tmp_path, data_dir, "--launcher", "ray")
    assert_same_rows(local_rows, rows(tmp_path), "ray")


def test_slurm_launcher_gives_the_local_rows(local_rows, sweep_file, tmp_path, data_dir,
                                             slurm_env):
    genbench_run(sweep_file, tmp_path, data_dir, "--launcher", "slurm", "--partition", "debug",
                 "--time", "15", "--poll-s", "1", env=slurm_env)
    assert_same_rows(local_rows, rows(tmp_path), "slurm (submitit)")


def test_sbatch_template_gives_the_local_rows(local_rows, sweep_file, tmp_path, data_dir,
                                              slurm_env):
    proc = subprocess.run(["sbatch", "--parsable", "--array=0", str(SBATCH_TEMPLATE),
                           str(sweep_file), "--out", str(tmp_path), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=run_env(slurm_env), cwd=tmp_path,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 600
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True,
                         env=slurm_env).stdout.strip():
        assert time.monotonic() < deadline, "sbatch job still queued"
        time.sleep(1)
    logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("slurm-genbench-*"))
    assert (tmp_path / "parity").is_dir(), logs[-3000:]
    assert_same_rows(local_rows, rows(tmp_path), "sbatch template")
