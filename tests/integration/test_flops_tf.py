"""genbench's layer-by-layer FLOP counts against TensorFlow's profiler (float_ops).

The profiler counts every op it has a formula for: MatMul, Conv2D and (for
transposed convolutions) Conv2DBackpropInput at 2 FLOPs per multiply-add, which is
genbench's matmul count, so that part must agree EXACTLY (tolerance 0: both are
integer formulas over the same static shapes). The rest it counts differently
from genbench's element-wise estimate (BiasAdd and batch-norm arithmetic yes,
LeakyReLU, resizes and tanh not at all), so the totals are only checked to be
dominated by the matmul part, which is why MFU may leave them out.

`nearest` runs as one folded convolution (NearestUpConv2D) that does fewer
multiply-adds than upsample-then-convolve; genbench charges it the unfused block's
model FLOPs (MFU counts the model's arithmetic), so `nearest` is checked against the
profile of the same network built unfused, and its own profile must be lower.

Training steps are compared on the compiled step's graph pruned to its outputs:
TensorFlow computes some gradients that nothing reads (the discriminator tape
also differentiates into the generator) and drops them before running.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from suite.models import UPSAMPLERS
from suite.models.flops import (
    MATMUL_OP_TYPES,
    eval_flops_per_image,
    network_flops,
    profiler_flops_by_op,
    training_flops,
)
from suite.models.gan import build_gan
from suite.models.networks import NetSpec, build_discriminator, build_generator
from suite.models.vae import build_vae

STEP_OP_TYPES = ("MatMul", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")


@pytest.fixture
def unfused(monkeypatch):
    """The `nearest` block as UpSampling2D + Conv2D, under a name of this test only."""
    monkeypatch.setitem(UPSAMPLERS._entries, "nearest_unfused",
                        "suite.models.upsampling:build_nearest_unfused")
    monkeypatch.setitem(UPSAMPLERS._tags, "nearest_unfused", {})
    return "nearest_unfused"


def spec(upsampling: str, num_classes: int = 0) -> NetSpec:
    return NetSpec(image_shape=(28, 28, 1), latent_dim=100, num_classes=num_classes,
                   upsampling=upsampling, kernel_size=5)


def forward_profile(net) -> dict[str, int]:
    shape = tuple(net.inputs[0].shape[1:])
    fn = tf.function(lambda x: net(x, training=False))
    return profiler_flops_by_op(fn.get_concrete_function(tf.TensorSpec((1, *shape))).graph)


@pytest.mark.parametrize("upsampling", ["transpose", "nearest", "bilinear", "subpixel"])
def test_generator_forward_matches_the_profiler(upsampling, unfused):
    net = build_generator(spec(upsampling), output_activation="tanh", name="generator")
    counted = network_flops(net)
    fused = forward_profile(net)
    assert ("Conv2DBackpropInput" in fused) == (upsampling in ("transpose", "nearest"))
    if upsampling == "nearest":
        assert sum(fused.get(op, 0) for op in MATMUL_OP_TYPES) < counted.forward
        net = build_generator(spec(unfused), output_activation="tanh", name="generator")
    by_op = forward_profile(net)
    assert sum(by_op.get(op, 0) for op in MATMUL_OP_TYPES) == counted.forward
    assert counted.forward / sum(by_op.values()) > 0.998  # element-wise work is noise here


def test_conditional_discriminator_forward_matches_the_profiler():
    net = build_discriminator(spec("transpose", num_classes=10))
    by_op = forward_profile(net)
    assert sum(by_op.get(op, 0) for op in MATMUL_OP_TYPES) == network_flops(net).forward
    # Conv biases are BiasAdd ops, Keras' Dense bias an AddV2: together genbench's bias count.
    assert by_op["BiasAdd"] + by_op["AddV2"] == 14 * 14 * 64 + 7 * 7 * 128 + 1


@pytest.mark.parametrize("build, upsampling", [(build_gan, "transpose"), (build_gan, "nearest"),
                                               (build_vae, "subpixel")])
def test_training_step_matches_the_pruned_step_graph(build, upsampling, unfused):
    counted = training_flops(build(spec(upsampling), lr=1e-4, seed=0)).total
    model = build(spec(unfused if upsampling == "nearest" else upsampling), lr=1e-4, seed=0)
    fn = tf.function(lambda images: model.compute_gradients(images, None))
    graph = fn.get_concrete_function(tf.TensorSpec((1, 28, 28, 1))).graph
    outputs = [t.op.name for t in graph.outputs]
    pruned = profiler_flops_by_op(graph, outputs)
    assert sum(pruned.get(op, 0) for op in STEP_OP_TYPES) == counted
    unpruned = profiler_flops_by_op(graph)
    assert sum(unpruned.get(op, 0) for op in STEP_OP_TYPES) >= counted


def test_frozen_graph_backbone_is_counted_by_the_profiler():
    from standin_graph import build_standin_graph

    try:
        from suite.metrics.backbones.frozen_graph import FrozenGraph
    except ImportError:  # before the issue-17 layout
        from suite.metrics.frozen_graph import FrozenGraph

    class Extractor:  # what GraphFeatureExtractor holds
        frozen = FrozenGraph(build_standin_graph(image_size=35, feature_dim=8, classes=10),
                             "ExpandDims:0", ["pool_3:0"])

    stem = (35 - 3) // 2 + 1  # 17: a 3x3 stride-2 VALID conv to 16 channels
    pooled = (stem - 2) // 2 + 1  # 8: after the 2x2 average pool
    expected = (2 * 9 * 3 * 16 * stem**2  # conv/Conv2D
                + 2 * (2 * 16 * 4 * pooled**2)  # two 1x1 convs to 4 channels each
                + 2 * 8 * 10)  # softmax/logits/MatMul
    # The graph resizes to its own size, so the count does not depend on the images fed.
    assert eval_flops_per_image(Extractor(), (28, 28, 3)) == expected
    assert eval_flops_per_image(Extractor(), (32, 32, 3)) == expected
    assert eval_flops_per_image(Extractor()) is None  # no image shape: no number
