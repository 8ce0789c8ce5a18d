"""depth and width reshape the networks identically for every upsampling variant;
beta1 reaches every Adam; depth 1, width 1.0 stays the tutorial network."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from suite.models import MODELS, UPSAMPLERS
from suite.models.networks import NetSpec


def build(model: str, upsampling: str = "transpose", depth: int = 1, width: float = 1.0,
          beta1: float = 0.9, precision: str = "fp32", latent: int = 8):
    spec = NetSpec((28, 28, 1), latent, 0, upsampling, 5, precision, depth=depth, width=width,
                   beta1=beta1)
    return MODELS.get(model)(spec, 1e-4, 0)


def block_widths(net: keras.Model) -> list[tuple[str, int]]:
    blocks = [layer for layer in net.layers if layer.name.startswith("up")]
    return [(b.name, b.compute_output_shape((None, *b.input.shape[1:]))[-1]) for b in blocks]


def conv_widths(net: keras.Model) -> list[int]:
    return [layer.filters for layer in net._flatten_layers()
            if isinstance(layer, keras.layers.Conv2D)]


@pytest.mark.parametrize("depth, expected", [
    (0, [("up2", 64), ("up3", 1)]),
    (1, [("up1", 128), ("up2", 64), ("up3", 1)]),
    (3, [("up1", 128), ("up1_2", 128), ("up1_3", 128), ("up2", 64), ("up3", 1)]),
])
def test_depth_is_stride1_blocks_of_one_width_in_every_variant(depth, expected):
    for upsampling in UPSAMPLERS.names():
        decoder = build("vae", upsampling, depth=depth).decoder
        assert block_widths(decoder) == expected, upsampling
        assert decoder.output_shape == (None, 28, 28, 1)


def test_depth_adds_one_block_of_parameters_each():
    counts = [build("dcgan", depth=d).param_counts()["generator"] for d in (0, 1, 2, 3)]
    steps = np.diff(counts)
    # A stride-1 transposed block 128 -> 128 (k5, no bias) + its BatchNorm. Depth 0 has
    # the 64-wide stride-2 block read the 256-channel dense map itself.
    assert steps[0] == (256 * 128 + 128 * 64 - 256 * 64) * 25 + 4 * 128
    assert list(steps[1:]) == [128 * 128 * 25 + 4 * 128] * 2
    assert build("dcgan", depth=1, latent=100).param_counts() == {
        "generator": 2_330_944, "discriminator": 212_865}  # the tutorial network


@pytest.mark.parametrize("width, gen, critic", [
    (0.25, [64, 32, 16], [16, 32]),
    (0.3, [77, 38, 19], [19, 38]),  # rounded to whole channels
    (2, [512, 256, 128], [128, 256]),
])
def test_width_scales_every_channel_width_of_both_networks(width, gen, critic):
    for upsampling in ("transpose", "nearest", "subpixel"):
        model = build("dcgan", upsampling, width=width)
        blocks = block_widths(model.generator)
        assert [w for _, w in blocks] == [gen[1], gen[2], 1], upsampling
        dense = [layer for layer in model.generator.layers
                 if isinstance(layer, keras.layers.Reshape)][0]
        assert dense.output.shape[-1] == gen[0]
        assert conv_widths(model.discriminator) == critic
        encoder = build("vae", upsampling, width=width).encoder
        assert conv_widths(encoder) == critic


def test_narrow_network_is_smaller_and_wide_is_bigger():
    def total(width):
        return sum(build("dcgan", width=width).param_counts().values())

    assert total(0.25) < total(0.5) < total(1.0) < total(2.0)


@pytest.mark.parametrize("model_name", ["dcgan", "vae"])
@pytest.mark.parametrize("depth, width", [(0, 0.25), (2, 0.5), (1, 4.0)])
def test_reshaped_models_train_a_step(model_name, depth, width):
    model = build(model_name, "nearest", depth=depth, width=width)
    low, high = model.pixel_range
    batch = np.random.default_rng(0).uniform(low, high, (4, 28, 28, 1)).astype(np.float32)
    losses = model.train_batch(batch, None, lambda g: g)
    assert all(np.isfinite(float(v)) for v in losses.values())
    images = model.generate(np.zeros((2, 8), np.float32), None)
    assert tuple(images.shape) == (2, 28, 28, 1)


@pytest.mark.parametrize("precision", ["fp32", "mixed_float16"])
def test_beta1_reaches_every_adam(precision):
    for name in ("dcgan", "cvae"):
        for beta1 in (0.5, 0.9):
            model = build(name, beta1=beta1, precision=precision)
            for optimizer in model.optimizers:
                inner = getattr(optimizer, "inner_optimizer", optimizer)
                assert isinstance(inner, keras.optimizers.Adam)
                assert float(inner.beta_1) == beta1
