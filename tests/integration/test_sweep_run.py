"""`genbench run` end to end on real MNIST: rows, PNGs, failures, re-runs, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from analysis.load import load_results
from suite.cli.main import main
from suite.models import MODELS
from suite.store import schema

SMALL = """
name: small
dataset: mnist
grid:
  model: [dcgan, vae]
  epochs: [1, 2]
fixed:
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  max_train_images: 256
eval: {n_samples: 200}
"""


def genbench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "suite.cli.main", *args], capture_output=True,
                          text=True, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    first = genbench("run", "smoke", "--out", str(out))
    second = genbench("run", "smoke", "--out", str(out))
    return out, first, second


def test_smoke_sweep_end_to_end(smoke_run):
    out, first, _ = smoke_run
    assert first.returncode == 0, first.stderr[-3000:]
    df = load_results(out / "smoke", deduplicate=False)
    assert len(df) == 8 * 2  # one row per trial and milestone
    assert set(df[schema.STATUS]) == {schema.STATUS_OK}
    assert sorted(df.groupby(schema.TRIAL_ID)[schema.EPOCH].apply(tuple).unique()) == [(1, 2)]
    assert (df[schema.IMAGES_PER_SEC] > 0).all() and (df[schema.STEP_TIME_P50_MS] > 0).all()
    assert df[schema.TF_VERSION].str.startswith("2.21").all()
    gans = df[df[schema.MODEL].isin(["dcgan", "cgan"])]
    vaes = df[df[schema.MODEL].isin(["vae", "cvae"])]
    assert gans[[schema.LOSS_G, schema.LOSS_D]].notna().all().all()
    assert vaes[[schema.ELBO, schema.LOSS_RECON, schema.LOSS_KL]].notna().all().all()
    assert (df[schema.PARAMS_TOTAL] > 0).all() and df[schema.HOSTNAME].notna().all()
    for _, row in df.iterrows():
        png = out / "smoke" / "trials" / row[schema.TRIAL_ID] / row[schema.SAMPLES_PNG]
        with Image.open(png) as img:
            assert img.width > 200 and img.height > 200
    # The table at the end of the run names every trial.
    assert all(t in first.stdout for t in df[schema.TRIAL_ID].unique())


def test_rows_carry_flops_peak_and_mfu(smoke_run):
    """Every row: the training step's FLOPs as counted from the trial's own networks, the
    backbone pass's, this CPU's calibrated peak, and MFU = achieved / (peak x workers)."""
    import keras

    from suite.models.flops import training_flops_per_image
    from suite.models.networks import NetSpec
    from suite.sweep.loader import load_sweep

    out, first, _ = smoke_run
    df = load_results(out / "smoke", deduplicate=False)
    assert (df[schema.FLOPS_PER_IMAGE] > 0).all() and (df[schema.EVAL_FLOPS_PER_IMAGE] > 0).all()
    assert df[schema.PEAK_SOURCE].str.startswith("calibration:").all()
    assert (df[schema.PEAK_TFLOPS] > 0).all()
    achieved = df[schema.FLOPS_PER_IMAGE] * df[schema.IMAGES_PER_SEC] / 1e12
    np.testing.assert_allclose(df[schema.ACHIEVED_TFLOPS], achieved, rtol=1e-9)
    np.testing.assert_allclose(df[schema.MFU], achieved / (df[schema.PEAK_TFLOPS]
                                                          * df[schema.WORKERS]), rtol=1e-9)
    assert ((df[schema.MFU] > 0) & (df[schema.MFU] < 2)).all()
    trial = load_sweep("smoke").trials[0]  # the count is the networks' own, rebuilt here
    row = df[df[schema.TRIAL_ID] == trial.trial_id].iloc[0]
    keras.backend.clear_session()
    net = NetSpec((28, 28, 1), trial.latent_dim, 10 if trial.model.startswith("c") else 0,
                  trial.upsampling, trial.kernel_size, trial.precision, depth=trial.depth,
                  width=trial.width, beta1=trial.beta1)
    model = MODELS.get(trial.model)(net, trial.lr_effective, trial.seed)
    assert row[schema.FLOPS_PER_IMAGE] == training_flops_per_image(model)


def test_rerun_skips_finished_trials(smoke_run):
    out, first, second = smoke_run
    assert second.returncode == 0, second.stderr[-3000:]
    # Piped (a log, not a terminal): a trial's outcome is a plain progress line on stdout.
    assert second.stdout.count("skipped (already ok)") == 8, second.stdout[-3000:]
    df = load_results(out / "smoke", deduplicate=False)
    assert len(df) == 16  # nothing duplicated, nothing rewritten


@pytest.fixture
def broken_model(monkeypatch):
    def build_broken(spec, lr, seed):
        raise RuntimeError("this model always fails to build")

    monkeypatch.setitem(MODELS._entries, "broken", build_broken)
    monkeypatch.setitem(MODELS._tags, "broken", {"family": "gan", "conditional": False})


def test_failing_trial_does_not_stop_the_sweep(broken_model, write_sweep, tmp_path, capsys):
    sweep = write_sweep(SMALL.replace("[dcgan, vae]", "[broken, vae]").replace("[1, 2]", "[1]"))
    assert main(["run", str(sweep), "--out", str(tmp_path), "--quiet"]) == 1
    df = load_results(tmp_path / "small", deduplicate=False)
    by_model = df.set_index(schema.MODEL)
    assert by_model.loc["broken", schema.STATUS] == schema.STATUS_FAILED
    assert "always fails" in by_model.loc["broken", schema.ERROR]
    assert by_model.loc["vae", schema.STATUS] == schema.STATUS_OK
    failed_id = by_model.loc["broken", schema.TRIAL_ID]
    assert "Traceback" in (tmp_path / "small" / "trials" / failed_id / "error.txt").read_text()
    assert "1 of 2 trials failed" in capsys.readouterr().err


def test_npz_dataset_sweep(write_sweep, tmp_path, data_dir):
    from suite.data.catalog import read_idx

    digits = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")[:400, 6:22, 6:22]
    npz = tmp_path / "crops.npz"
    np.savez(npz, x=digits)  # 16x16, no labels
    # No labels, so no domain classifier: sample quality from spectra only.
    sweep = write_sweep(SMALL.replace("dataset: mnist", f"dataset: 'npz:{npz}'")
                        .replace("[1, 2]", "[1]")
                        .replace("eval: {n_samples: 200}", "eval: {n_samples: 200, backbones: []}"))
    assert main(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    df = load_results(tmp_path / "out" / "small", deduplicate=False)
    assert len(df) == 2 and set(df[schema.STATUS]) == {"ok"}
    assert set(df[schema.IMAGE_SHAPE]) == {"16x16x1"} and set(df[schema.N_TRAIN]) == {256}
    assert df[schema.SPECTRAL_DISTANCE].notna().all() and df[schema.FD_DOMAIN].isna().all()


def test_unlabelled_npz_with_domain_backbone_is_refused(write_sweep, tmp_path, capsys):
    npz = tmp_path / "nolabels.npz"
    np.savez(npz, x=np.zeros((300, 16, 16), np.uint8))
    sweep = write_sweep(SMALL.replace("dataset: mnist", f"dataset: 'npz:{npz}'"))
    assert main(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "eval.backbones" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_killed_run_resumes_from_its_checkpoint(write_sweep, tmp_path):
    sweep = write_sweep("""
        name: resume
        dataset: mnist
        grid: {model: [vae], epochs: [1, 2, 3]}
        fixed: {upsampling: nearest, latent_dim: 8, batch_size: 32, max_train_images: 1536}
        eval: {n_samples: 200}
    """)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                             str(out), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = list((out / "resume" / "trials").glob("*/checkpoint.npz")) if out.exists() else []
    deadline = time.monotonic() + 300
    while not checkpoints and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        checkpoints = list(out.glob("resume/trials/*/checkpoint.npz"))
    assert checkpoints, "no checkpoint appeared"
    os.killpg(proc.pid, signal.SIGKILL)  # as a preempted job would be
    proc.wait()
    rows_before = load_results(out / "resume", deduplicate=False)
    assert len(rows_before) < 3
    rerun = genbench("run", str(sweep), "--out", str(out), "--quiet")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    df = load_results(out / "resume", deduplicate=False).sort_values(schema.EPOCH)
    assert df[schema.EPOCH].tolist() == [1, 2, 3]  # each milestone exactly once
    assert set(df[schema.STATUS]) == {"ok"}
    final = df.iloc[-1]
    assert final[schema.STEPS] == 3 * (1536 // 32)
    assert final[schema.WARMUP_STEPS] == 4  # two processes, each traced its step again
