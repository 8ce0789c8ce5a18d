"""Every model x upsampling builds with the right shapes; the reference network is
the TensorFlow DCGAN tutorial's; sub-pixel starts as nearest-neighbour upsampling."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from suite.models import MODELS, UPSAMPLERS, is_conditional
from suite.models.networks import NetSpec

SHAPES = [(28, 28, 1), (32, 32, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("model_name", MODELS.names())
@pytest.mark.parametrize("upsampling", UPSAMPLERS.names())
def test_model_builds_and_steps(model_name, upsampling, shape):
    classes = 10 if is_conditional(model_name) else 0
    model = MODELS.get(model_name)(NetSpec(shape, 8, classes, upsampling, 5), 1e-4, 0)
    labels = np.arange(4) % 10
    images = model.generate(np.zeros((4, 8), np.float32), labels if classes else None)
    assert tuple(images.shape) == (4, *shape)
    assert 0.0 <= float(keras.ops.min(images)) and float(keras.ops.max(images)) <= 1.0
    low, high = model.pixel_range
    batch = np.random.default_rng(0).uniform(low, high, (4, *shape)).astype(np.float32)
    losses = model.train_batch(batch, labels.astype(np.int32), lambda g: g)
    assert set(losses) == set(model.loss_names)
    assert all(np.isfinite(float(v)) for v in losses.values())
    counts = model.param_counts()
    assert all(n > 0 for n in counts.values())


def test_dcgan_transpose_is_the_tutorial_network():
    model = MODELS.get("dcgan")(NetSpec((28, 28, 1), 100, 0, "transpose", 5), 1e-4, 0)
    # The TensorFlow DCGAN tutorial: generator 2,330,944 parameters, discriminator 212,865.
    assert model.param_counts() == {"generator": 2_330_944, "discriminator": 212_865}
    convs = [layer for layer in model.generator._flatten_layers()
             if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
        (128, (5, 5), (1, 1)), (64, (5, 5), (2, 2)), (1, (5, 5), (2, 2))]
    dropouts = [layer.rate for layer in model.discriminator.layers
                if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.3, 0.3]


@pytest.mark.parametrize("upsampling", UPSAMPLERS.names())
def test_variants_share_depth_and_widths(upsampling):
    model = MODELS.get("vae")(NetSpec((28, 28, 1), 16, 0, upsampling, 5), 1e-4, 0)
    blocks = [layer for layer in model.decoder.layers if layer.name.startswith("up")]
    assert [b.name for b in blocks] == ["up1", "up2", "up3"]
    assert [b.compute_output_shape((None, *b.input.shape[1:]))[-1] for b in blocks] == [128, 64, 1]


def test_subpixel_icnr_starts_as_nearest_upsampling():
    block = UPSAMPLERS.get("subpixel")(3, 3, 2, name="sp")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype(np.float32)
    y = np.asarray(block(x))
    assert y.shape == (2, 10, 10, 3)
    # Every 2x2 output block is constant: ICNR makes all four sub-pixels share a kernel.
    blocks = y.reshape(2, 5, 2, 5, 2, 3)
    assert np.allclose(blocks, blocks[:, :, :1, :, :1, :], atol=1e-6)


def test_transpose_k5_s2_leaves_checkerboard_and_resize_does_not():
    """The reason the upsampling axis exists: with constant input and constant
    weights, a stride-2 kernel-5 transposed conv gives an uneven (checkerboard)
    output, while resize-then-convolve gives an even one in the interior."""
    x = np.ones((1, 6, 6, 1), np.float32)
    out = {}
    for name in ("transpose", "nearest"):
        block = UPSAMPLERS.get(name)(1, 5, 2, name=name)
        block.build((None, 6, 6, 1))
        for w in block.weights:
            w.assign(np.ones(w.shape, np.float32))
        out[name] = np.asarray(block(x))[0, 3:-3, 3:-3, 0]
    assert out["transpose"].std() > 0.1 * out["transpose"].mean()
    assert out["nearest"].std() < 1e-6
