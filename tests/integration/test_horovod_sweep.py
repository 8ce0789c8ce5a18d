"""`genbench run` with workers [1, 2]: real Horovod ranks (Gloo) through the trainer."""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys

import pytest

from analysis.load import load_results
from suite.launchers.local import LocalLauncher
from suite.store import schema
from suite.sweep.loader import load_sweep
from suite.trial.context import RunContext

pytestmark = pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                                reason="Horovod not installed: run tools/install-horovod.sh "
                                       ".venv/bin/python (make install does)")

SWEEP = """
name: scaling
dataset: mnist
grid:
  model: [dcgan]
  workers: [1, 2]
  epochs: [1, 2]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  lr_scaling: linear
  max_train_images: 512
eval: {n_samples: 200}
"""


@pytest.fixture(scope="module")
def scaling_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hvd")
    sweep = tmp / "scaling.yaml"
    sweep.write_text(SWEEP)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "suite.cli.main", "run", str(sweep),
                           "--out", str(out),
                           "--quiet", "--timeline"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out / "scaling"


def test_one_result_set_per_trial(scaling_run):
    df = load_results(scaling_run, deduplicate=False)
    assert len(df) == 4  # 2 trials x 2 milestones, rank 0 writes alone
    assert df.groupby(schema.WORKERS)[schema.EPOCH].apply(sorted).to_dict() == {1: [1, 2],
                                                                                 2: [1, 2]}
    two = df[df[schema.WORKERS] == 2].iloc[-1]
    assert two[schema.GLOBAL_BATCH_SIZE] == 64 and two[schema.BATCH_SIZE] == 32
    assert two[schema.LR_EFFECTIVE] == pytest.approx(2 * two[schema.LR])
    assert two[schema.IMAGES_PER_SEC_PER_WORKER] == pytest.approx(two[schema.IMAGES_PER_SEC] / 2)
    assert two[schema.N_TRAIN] == 512 and two[schema.STEPS] == 2 * (256 // 32)
    assert set(df[schema.STATUS]) == {schema.STATUS_OK}


def test_ranks_end_with_identical_weights(scaling_run):
    two = load_results(scaling_run, deduplicate=False).query("workers == 2").iloc[0]
    log = (scaling_run / "trials" / two[schema.TRIAL_ID] / "worker.log").read_text()
    digests = dict(re.findall(r"rank (\d)/2: trial \w+ ok weights=(\w+)", log))
    assert set(digests) == {"0", "1"}, log[-2000:]
    assert digests["0"] == digests["1"] != "-"


def test_timeline_written(scaling_run):
    two = load_results(scaling_run, deduplicate=False).query("workers == 2").iloc[0]
    timeline = scaling_run / "trials" / two[schema.TRIAL_ID] / "timeline.json"
    assert "ALLREDUCE" in timeline.read_text()


def test_rows_carry_the_placement(scaling_run):
    df = load_results(scaling_run, deduplicate=False)
    assert set(df[schema.HOSTS]) == {socket.gethostname()}
    assert set(df[schema.NODES]) == {1}


MISSING_IFACE_SWEEP = """
name: badnet
dataset: mnist
grid:
  model: [dcgan]
  workers: [2]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  epochs: 1
  max_train_images: 64
eval: {n_samples: 64}
"""


def test_missing_gloo_interface_fails_the_trial_with_a_message(tmp_path, monkeypatch):
    """Each rank checks HOROVOD_GLOO_IFACE before Gloo starts: a failed row naming the host,
    not a rank killed by a signal inside Gloo's device set-up (the local launcher's path)."""
    sweep = tmp_path / "badnet.yaml"
    sweep.write_text(MISSING_IFACE_SWEEP)
    (trial,) = load_sweep(str(sweep)).trials
    monkeypatch.setenv("HOROVOD_GLOO_IFACE", "gbnope0")
    (result,) = LocalLauncher().launch([trial], RunContext(out=tmp_path / "out"))
    assert result.status == schema.STATUS_FAILED
    row = load_results(tmp_path / "out" / "badnet", deduplicate=False).iloc[-1]
    assert row[schema.STATUS] == schema.STATUS_FAILED
    error = row[schema.ERROR]
    assert f"host {socket.gethostname()}" in error and "'gbnope0'" in error, error
    assert "does not exist" in error and "HOROVOD_GLOO_IFACE" in error, error
    error_txt = tmp_path / "out" / "badnet" / "trials" / row[schema.TRIAL_ID] / "error.txt"
    assert "gbnope0" in error_txt.read_text()
