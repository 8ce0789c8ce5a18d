"""The folded nearest-upsample convolution computes what UpSampling2D + Conv2D compute."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from suite.models.flops import network_flops
from suite.models.upsampling import (
    NearestUpConv2D,
    build_nearest,
    build_nearest_unfused,
    nearest_fold,
    transpose_fold,
)


def unfused_and_fused(kernel: int, activation: str | None, use_bias: bool, shape):
    """The two-layer block and the fused one, built and given the same random weights."""
    unfused = build_nearest_unfused(6, kernel, 2, "a", activation, use_bias)
    fused = build_nearest(6, kernel, 2, "b", activation, use_bias)
    unfused.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(kernel)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in unfused.get_weights()]
    unfused.set_weights(weights)
    fused.set_weights(weights)
    return unfused, fused


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("activation,use_bias", [(None, False), ("tanh", True)])
def test_fused_block_matches_upsample_then_conv(kernel, activation, use_bias):
    shape = (3, 5, 7, 4)  # odd, non-square maps: the borders' zero padding must line up
    unfused, fused = unfused_and_fused(kernel, activation, use_bias, shape)
    assert isinstance(fused.layers[0], NearestUpConv2D)
    x = tf.constant(np.random.default_rng(1).standard_normal(shape).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ya, yb = unfused(x), fused(x)
        la, lb = tf.reduce_sum(ya**2), tf.reduce_sum(yb**2)
    assert ya.shape == yb.shape == (3, 10, 14, 6)
    scale = float(tf.reduce_max(tf.abs(ya)))
    assert float(tf.reduce_max(tf.abs(ya - yb))) <= 1e-5 * scale
    grads_a = tape.gradient(la, [x, *unfused.trainable_variables])
    grads_b = tape.gradient(lb, [x, *fused.trainable_variables])
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert float(tf.reduce_max(tf.abs(ga - gb))) <= 1e-5 * float(tf.reduce_max(tf.abs(ga)))


def test_fold_reads_each_tap_once_per_phase():
    for kernel in (1, 3, 5, 7):
        fold = nearest_fold(kernel)
        assert (fold.sum(axis=1) == 1).all()  # every tap reads exactly one low-res pixel
        g, (before, after) = transpose_fold(kernel)
        assert (g.sum(axis=0) == 2).all()  # ... once for each of the two phases
        assert before + after == g.shape[0] - 2


def test_fused_block_counts_the_model_flops_of_the_unfused_one():
    """MFU counts model FLOPs: the fused block is charged what upsample + conv compute."""
    shape = (7, 7, 16)
    unfused = keras.Sequential([keras.Input(shape), build_nearest_unfused(8, 3, 2, "a")])
    fused = keras.Sequential([keras.Input(shape), build_nearest(8, 3, 2, "b")])
    expected = 2 * 9 * 16 * (14 * 14) * 8  # 3x3 taps x 16 in x (14x14 pixels) x 8 out
    assert network_flops(unfused).forward == network_flops(fused).forward == expected


def test_even_kernel_is_refused():
    with pytest.raises(ValueError, match="odd kernel"):
        NearestUpConv2D(4, 4)


def test_a_checkpoint_of_the_unfused_block_loads_into_the_fused_one(tmp_path, monkeypatch):
    """Checkpoints store variables by position: `nearest` trials checkpointed before the
    block was fused resume on it, with the same outputs."""
    from suite.models import MODELS, UPSAMPLERS
    from suite.models.networks import NetSpec
    from suite.training.checkpoint import load_checkpoint, save_checkpoint

    # the unfused block under a name of this test only (not a sweep axis value)
    monkeypatch.setitem(UPSAMPLERS._entries, "nearest_unfused",
                        "suite.models.upsampling:build_nearest_unfused")
    monkeypatch.setitem(UPSAMPLERS._tags, "nearest_unfused", {})
    built = {}
    for upsampling in ("nearest_unfused", "nearest"):
        keras.utils.set_random_seed(0)
        built[upsampling] = MODELS.get("vae")(NetSpec((28, 28, 1), 8, 0, upsampling, 3,
                                                      width=0.125), 1e-3, 0)
    old, new = built["nearest_unfused"], built["nearest"]
    old.build_optimizers()
    for i, v in enumerate(old.trainable_variables):  # weights no initialisation shares
        noise = np.random.default_rng(i).standard_normal(v.shape).astype(v.dtype)
        v.assign(v + 0.1 * noise)
    save_checkpoint(tmp_path / "c.npz", old, 3, {})
    assert load_checkpoint(tmp_path / "c.npz", new)[0] == 3
    z = np.random.default_rng(2).standard_normal((4, 8)).astype("float32")
    a, b = np.asarray(old.generate(z, None)), np.asarray(new.generate(z, None))
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
