"""Precision policies: each trains with finite, falling losses, keeps outputs and metrics
in float32, checkpoints and resumes exactly; and a precision x steps_per_call sweep runs
with the local and the Ray launchers."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from analysis.load import load_results
from suite.models import MODELS
from suite.models.networks import NetSpec
from suite.models.precision import PRECISIONS
from suite.store import schema
from suite.training.loop import TrainConfig, train

COMPUTE_DTYPES = {"fp32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def build(name: str, precision: str, lr: float = 1e-3, seed: int = 0):
    # As the worker does per trial: graph node names (and with them the order grappler sums
    # gradients in, hence the last bits) then do not depend on what the process built before.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    classes = 10 if name.startswith("c") else 0
    # Quarter width: on a CPU without AVX-512 the 16-bit policies are emulated (slow), and
    # what is checked here (dtypes, finite falling losses, exact resume) does not need more.
    return MODELS.get(name)(NetSpec((28, 28, 1), 8, classes, "nearest", 3, precision,
                                    width=0.25), lr, seed)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_policy_trains_with_finite_falling_losses(mnist, precision):
    history = []
    outcome = train(build("vae", precision), mnist.x_train[:768], mnist.y_train[:768],
                    TrainConfig(epochs=3, milestones=(3,), batch_size=64, seed=0,
                                steps_per_call=4), on_epoch=history.append)
    assert outcome.status == "ok"
    elbo = [r.losses["elbo"] for r in history]
    assert all(np.isfinite(v) for r in history for v in r.losses.values())
    assert elbo[2] > elbo[0] + 20, elbo  # nats per image: a clear improvement


@pytest.mark.parametrize("precision", PRECISIONS)
def test_networks_compute_in_the_policy_and_answer_in_float32(mnist, precision):
    model = build("cgan", precision)
    convs = [layer for net in model.networks.values() for layer in net._flatten_layers()
             if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)]
    assert {layer.compute_dtype for layer in convs} == {COMPUTE_DTYPES[precision]}
    assert {v.dtype for v in model.trainable_variables} == {"float32"}  # master weights
    images = model.generate(np.zeros((4, 8), np.float32), np.arange(4))
    assert keras.backend.standardize_dtype(images.dtype) == "float32"
    grads, losses = model.compute_gradients(
        mnist.x_train[:4].astype(np.float32) / 127.5 - 1.0, mnist.y_train[:4])
    assert {keras.backend.standardize_dtype(v.dtype) for v in losses.values()} == {"float32"}
    # The policy was scoped to the model: a network built afterwards is float32 again.
    assert keras.layers.Dense(2).compute_dtype == "float32"
    scaled = isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_resume_under_policy_matches_an_uninterrupted_run(mnist, tmp_path, precision):
    x, y = mnist.x_train[:384], mnist.y_train[:384]
    config = TrainConfig(epochs=2, milestones=(2,), batch_size=64, seed=3, steps_per_call=4)
    straight, seen_straight = build("dcgan", precision, seed=3), []
    train(straight, x, y, config, on_epoch=seen_straight.append)
    ckpt = tmp_path / "checkpoint.npz"
    train(build("dcgan", precision, seed=3), x, y,
          TrainConfig(epochs=1, milestones=(1,), batch_size=64, seed=3, steps_per_call=4), ckpt)
    resumed, seen = build("dcgan", precision, seed=3), []
    outcome = train(resumed, x, y, config, ckpt, on_epoch=seen.append)
    assert outcome.resumed_from == 1 and [r.epoch for r in seen] == [2]
    assert seen[0].losses == seen_straight[-1].losses  # the epoch-2 row is the same row
    for a, b in zip(straight.variables, resumed.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    for opt_a, opt_b in zip(straight.optimizers, resumed.optimizers, strict=True):
        for a, b in zip(opt_a.variables, opt_b.variables, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    if precision == "mixed_float16":  # the loss scale is part of the checkpoint
        assert any("dynamic_scale" in v.path for v in resumed.optimizers[0].variables)


SWEEP = """
name: policies
dataset: mnist
grid:
  precision: [fp32, mixed_bfloat16]
  steps_per_call: [1, 8]
  epochs: [1, 2]
fixed:
  model: dcgan
  upsampling: nearest
  latent_dim: 8
  batch_size: 32
  width: 0.125
  max_train_images: 128
eval: {n_samples: 32}
"""


@pytest.mark.parametrize("launcher", ["local", "ray"])
def test_precision_by_steps_per_call_sweep(tmp_path, launcher, data_dir):
    if launcher == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Tune not installed: pip install 'genbench[ray]'")
    sweep = tmp_path / "policies.yaml"
    sweep.write_text(textwrap.dedent(SWEEP))
    env = {**os.environ, "GENBENCH_DATA": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "suite.cli.main", "run", str(sweep), "--out",
                           str(tmp_path / "out"), "--launcher", launcher, "--quiet"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    df = load_results(tmp_path / "out" / "policies", deduplicate=False)
    assert len(df) == 8 and set(df[schema.STATUS]) == {schema.STATUS_OK}  # 4 trials x 2
    key = [schema.PRECISION, schema.STEPS_PER_CALL]
    assert df.groupby(key)[schema.EPOCH].apply(sorted).to_dict() == {
        (p, k): [1, 2] for p in ("fp32", "mixed_bfloat16") for k in (1, 8)}
    assert set(df[schema.STEPS_PER_CALL_SETTING]) == {"1", "8"}
    # Wall time holds every call and what lies between them (setup, compilation).
    assert (df[schema.WALL_TIME_S] >= df[schema.TRAIN_TIME_S]).all()
    assert (df[schema.WALL_TIME_S] >= df[schema.EPOCH_WALL_S]).all()
    # K changes how steps are grouped into calls, never the training: same losses.
    for precision, rows in df.groupby(schema.PRECISION):
        by_k = {k: r.sort_values(schema.EPOCH)[schema.LOSS_G].tolist()
                for k, r in rows.groupby(schema.STEPS_PER_CALL)}
        assert by_k[1] == by_k[8], precision
