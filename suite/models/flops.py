"""FLOPs per image, counted from the built Keras networks layer by layer.

The convention is the one model-FLOPs utilisation (MFU, PaLM appendix B) uses:
a multiply-add is 2 FLOPs, and the headline count (`matmul`) is the work of the
weight layers only: Dense 2*in*out per position, Conv 2*k*k*cin*cout per OUTPUT
pixel, Conv2DTranspose 2*k*k*cin*cout per INPUT pixel (each input pixel scatters
a k x k x cout patch, so the stride enters through the input size; this is also
TensorFlow's count for Conv2DBackpropInput). Biases, normalisation,
activations, dropout, resizes and pixel shuffles are memory-bound element-wise
work: they are counted apart (`elementwise`, a few FLOPs per element, see
ELEMENTWISE_PER_ELEMENT) and left out of MFU, because the peak MFU divides by is
a matrix-multiply peak. Nearest upsampling and depth-to-space (sub-pixel) only
move data: 0 FLOPs in both counts.

A training step is counted from what the family's `compute_gradients` really
runs (suite/models/gan.py, vae.py): every forward pass, and for every backward
pass the weight gradients (= the layer's forward FLOPs) and the input gradients
(= forward FLOPs again), except the input gradient of a network's first weight
layer when nothing upstream needs it (TensorFlow prunes it in the compiled step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

# Element-wise FLOPs per output element (estimates; not part of the MFU count).
ELEMENTWISE_PER_ELEMENT: dict[str, int] = {
    "bias": 1,
    "activation": 1,  # LeakyReLU, tanh, ...: one op per element (transcendentals count 1)
    "batch_norm": 4,  # batch mean and variance, normalise, scale-and-shift
    "layer_norm": 5,
    "dropout": 1,  # the mask multiply
    "bilinear": 7,  # weighted sum of four neighbours: 4 multiplies + 3 adds
}
# TensorFlow op types whose profiler float_ops are the matmul count above.
MATMUL_OP_TYPES = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D",
                   "Conv2DBackpropInput", "DepthwiseConv2dNative")

_CONV = (layers.Conv1D, layers.Conv2D, layers.Conv3D)
_CONV_TRANSPOSE = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
_DEPTHWISE = (layers.DepthwiseConv1D, layers.DepthwiseConv2D)
_SEPARABLE = (layers.SeparableConv1D, layers.SeparableConv2D)
_POOL = (layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D,
         layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D)
_GLOBAL_POOL = (layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D,
                layers.GlobalAveragePooling3D, layers.GlobalMaxPooling1D,
                layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D)
_ACTIVATIONS = (layers.Activation, layers.LeakyReLU, layers.ReLU, layers.ELU, layers.PReLU,
                layers.Softmax)
_MERGE = (layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum,
          layers.Minimum)


class UncountedLayerError(ValueError):
    """A layer with weights that the walker has no formula for: a silent 0 would lie."""


@dataclass(frozen=True)
class LayerFlops:
    """One leaf layer's forward FLOPs per image."""

    name: str
    kind: str  # the layer's class name
    matmul: int
    elementwise: int
    trainable: bool  # has trainable weights, so a backward pass computes their gradient


@dataclass(frozen=True)
class NetworkFlops:
    """A network's forward FLOPs per image, and the part its first weight layer does."""

    name: str
    layers: tuple[LayerFlops, ...]

    @property
    def forward(self) -> int:
        return sum(layer.matmul for layer in self.layers)

    @property
    def elementwise(self) -> int:
        return sum(layer.elementwise for layer in self.layers)

    @property
    def weight_gradients(self) -> int:
        return sum(layer.matmul for layer in self.layers if layer.trainable)

    @property
    def first_layer(self) -> int:
        """Matmul FLOPs of the first weight layer: its input gradient is skipped when
        the network's input needs none (noise, real images)."""
        return next((layer.matmul for layer in self.layers if layer.matmul), 0)

    def input_gradients(self, input_needs_gradient: bool) -> int:
        return self.forward - (0 if input_needs_gradient else self.first_layer)


@dataclass(frozen=True)
class StepTerm:
    """One pass of one network in a training step, per image."""

    network: str
    update: str  # the objective it serves: "discriminator", "generator", "elbo"
    phase: str  # "forward", "weight_gradients" or "input_gradients"
    flops: int


@dataclass(frozen=True)
class TrainingFlops:
    """Where a training step's matmul FLOPs go, per training image."""

    terms: tuple[StepTerm, ...]
    networks: tuple[NetworkFlops, ...]

    @property
    def total(self) -> int:
        return sum(t.flops for t in self.terms)

    def by(self, field: str) -> dict[str, int]:
        """Totals grouped by a StepTerm field ("network", "update" or "phase")."""
        out: dict[str, int] = {}
        for t in self.terms:
            out[getattr(t, field)] = out.get(getattr(t, field), 0) + t.flops
        return out


def _per_image(shape: Any) -> tuple[int, ...]:
    """A static shape without its batch axis; a None left means the count is undefined."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(f"shape {tuple(shape)} is not static: FLOPs per image are undefined")
    return tuple(int(d) for d in dims)


def _layer_shapes(layer: Any) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    """Per-image input shapes (a list: merge layers take several) and output shape."""
    inputs = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    return [_per_image(t.shape) for t in inputs], _per_image(layer.output.shape)


def _activation_flops(activation: Any, elements: int) -> int:
    name = getattr(activation, "__name__", str(activation))
    return 0 if name == "linear" else ELEMENTWISE_PER_ELEMENT["activation"] * elements


def layer_flops(layer: Any, input_shapes: list[tuple[int, ...]],
                output_shape: tuple[int, ...]) -> LayerFlops:
    """Forward FLOPs per image of one leaf layer, from its per-image shapes (channels last)."""
    x, out = input_shapes[0], output_shape
    n_in, n_out = math.prod(x), math.prod(out)
    matmul = elementwise = 0
    if isinstance(layer, layers.Dense):
        matmul = 2 * x[-1] * layer.units * (n_in // x[-1])
    elif isinstance(layer, _SEPARABLE):
        k, cin = math.prod(layer.kernel_size), x[-1]
        depthwise_out = n_out // out[-1] * cin * layer.depth_multiplier
        matmul = 2 * k * depthwise_out + 2 * cin * layer.depth_multiplier * n_out
    elif isinstance(layer, _DEPTHWISE):
        matmul = 2 * math.prod(layer.kernel_size) * n_out
    elif isinstance(layer, _CONV_TRANSPOSE):
        matmul = 2 * math.prod(layer.kernel_size) * n_in * layer.filters
    elif isinstance(layer, _CONV):
        matmul = 2 * math.prod(layer.kernel_size) * (x[-1] // layer.groups) * n_out
    elif isinstance(layer, layers.BatchNormalization):
        elementwise = ELEMENTWISE_PER_ELEMENT["batch_norm"] * n_out
    elif isinstance(layer, layers.LayerNormalization | layers.GroupNormalization):
        elementwise = ELEMENTWISE_PER_ELEMENT["layer_norm"] * n_out
    elif isinstance(layer, layers.UpSampling2D):
        per = ELEMENTWISE_PER_ELEMENT["bilinear"] if layer.interpolation == "bilinear" else 0
        elementwise = per * n_out
    elif isinstance(layer, layers.Dropout):
        elementwise = ELEMENTWISE_PER_ELEMENT["dropout"] * n_out
    elif isinstance(layer, _ACTIVATIONS):
        activation = getattr(layer, "activation", "activation")
        elementwise = _activation_flops(activation, n_out)
    elif isinstance(layer, _POOL):
        elementwise = math.prod(layer.pool_size) * n_out
    elif isinstance(layer, _GLOBAL_POOL):
        elementwise = n_in
    elif isinstance(layer, _MERGE):
        elementwise = (len(input_shapes) - 1) * n_out
    elif layer.weights:
        raise UncountedLayerError(f"no FLOP formula for layer {layer.name!r} "
                                  f"({type(layer).__name__}) that has weights")
    # else: reshapes, flattens, concatenations, pixel shuffles, nearest resizes: data moves
    if matmul:
        if getattr(layer, "use_bias", False):
            elementwise += ELEMENTWISE_PER_ELEMENT["bias"] * n_out
        elementwise += _activation_flops(getattr(layer, "activation", "linear"), n_out)
    trainable = bool(layer.trainable and layer.trainable_weights)
    return LayerFlops(layer.name, type(layer).__name__, int(matmul), int(elementwise), trainable)


def leaf_layers(model: Any) -> list[Any]:
    """The model's layers in order, nested models (Sequential blocks) opened up."""
    out = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        out.extend(leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def network_flops(model: Any) -> NetworkFlops:
    """Per-layer forward FLOPs per image of a built Keras model."""
    counted = []
    for layer in leaf_layers(model):
        inputs, output = _layer_shapes(layer)
        counted.append(layer_flops(layer, inputs, output))
    return NetworkFlops(model.name, tuple(counted))


def model_forward_flops(model: Any, include_elementwise: bool = False) -> int:
    """Forward matmul FLOPs per image of a built Keras model (+ element-wise if asked)."""
    flops = network_flops(model)
    return flops.forward + (flops.elementwise if include_elementwise else 0)


def _backward(net: NetworkFlops, update: str, input_needs_gradient: bool,
              weights: bool = True, passes: int = 1) -> list[StepTerm]:
    terms = [StepTerm(net.name, update, "input_gradients",
                      passes * net.input_gradients(input_needs_gradient))]
    if weights:
        terms.append(StepTerm(net.name, update, "weight_gradients", passes * net.weight_gradients))
    return terms


def gan_training_flops(generator: Any, discriminator: Any) -> TrainingFlops:
    """One GAN.compute_gradients per image: G forward once; D forward on the real and the
    fake image; the G update backpropagates through D's fake branch (input gradients
    only, down to the image) and through G; the D update backpropagates through both
    D branches (weights, and inputs above D's first layer)."""
    g, d = network_flops(generator), network_flops(discriminator)
    terms = [StepTerm(g.name, "generator", "forward", g.forward),
             StepTerm(d.name, "discriminator", "forward", 2 * d.forward),
             *_backward(d, "generator", input_needs_gradient=True, weights=False),
             *_backward(g, "generator", input_needs_gradient=False),
             *_backward(d, "discriminator", input_needs_gradient=False, passes=2)]
    return TrainingFlops(tuple(terms), (g, d))


def vae_training_flops(encoder: Any, decoder: Any) -> TrainingFlops:
    """One VAE.compute_gradients per image: encoder and decoder forward once; the one
    ELBO gradient runs back through the decoder (to z, which the encoder needs) and the
    encoder (whose input, the image, needs none)."""
    e, dec = network_flops(encoder), network_flops(decoder)
    terms = [StepTerm(e.name, "elbo", "forward", e.forward),
             StepTerm(dec.name, "elbo", "forward", dec.forward),
             *_backward(dec, "elbo", input_needs_gradient=True),
             *_backward(e, "elbo", input_needs_gradient=False)]
    return TrainingFlops(tuple(terms), (e, dec))


def training_flops(model: Any) -> TrainingFlops:
    """The step breakdown of a genbench model (suite.models.base.GenerativeModel)."""
    nets = model.networks
    if {"generator", "discriminator"} <= set(nets):
        return gan_training_flops(nets["generator"], nets["discriminator"])
    if {"encoder", "decoder"} <= set(nets):
        return vae_training_flops(nets["encoder"], nets["decoder"])
    raise ValueError(f"no training-step FLOP count for networks {sorted(nets)}")


def training_flops_per_image(model: Any) -> int:
    """Matmul FLOPs of one training step per training image (the MFU numerator)."""
    return training_flops(model).total


def profiler_flops_by_op(graph: Any, outputs: list[str] | None = None) -> dict[str, int]:
    """TensorFlow's own count (tf.compat.v1.profiler float_ops) per op type of `graph`;
    every shape in it must be static. With `outputs` (op names), only the ops those
    outputs depend on count: what a compiled step runs after dead-code pruning."""
    import tensorflow as tf

    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph, cmd="scope", options=options)
    op_types = {op.name: op.type for op in graph.get_operations()}
    if outputs is not None:
        graph_def = graph.as_graph_def()
        kept = tf.compat.v1.graph_util.extract_sub_graph(graph_def, outputs).node
        op_types = {node.name: op_types[node.name] for node in kept}
    counts: dict[str, int] = {}
    nodes = list(profile.children)
    while nodes:  # the scope view nests ops under their name scopes
        node = nodes.pop()
        nodes.extend(node.children)
        if node.name in op_types and node.float_ops:
            kind = op_types[node.name]
            counts[kind] = counts.get(kind, 0) + int(node.float_ops)
    return counts


def graph_forward_flops(graph: Any, input_name: str, image_shape: tuple[int, ...]) -> int:
    """Matmul FLOPs per image of a TF graph (e.g. the frozen Inception graph), by the
    profiler on a copy whose input `input_name` is pinned to one image of `image_shape`."""
    import tensorflow as tf

    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        node.attr.pop("_output_shapes", None)
    pinned = tf.Graph()
    with pinned.as_default():
        images = tf.compat.v1.placeholder(tf.float32, (1, *image_shape), name="flops_input")
        tf.graph_util.import_graph_def(graph_def, input_map={input_name: images}, name="")
    by_op = profiler_flops_by_op(pinned)
    return sum(by_op.get(op, 0) for op in MATMUL_OP_TYPES)


def eval_flops_per_image(backbone: Any, image_shape: tuple[int, ...] | None = None) -> int | None:
    """Forward matmul FLOPs per image of an evaluation backbone, or None when uncountable.

    Takes a Keras model, a feature extractor holding one (`.network`), or one holding
    a frozen graph (`.frozen.graph`, fed at `.frozen.images`; needs `image_shape`, the
    images as fed). None for anything else, or a network with dynamic shapes or a
    layer without a formula: a missing number, never a wrong one.
    """
    network = backbone if isinstance(backbone, keras.Model) else getattr(backbone, "network", None)
    try:
        if isinstance(network, keras.Model):
            return model_forward_flops(network)
        frozen = getattr(backbone, "frozen", None)
        if frozen is not None and image_shape is not None:
            return graph_forward_flops(frozen.graph, frozen.images.name, image_shape)
    except (ValueError, AttributeError):  # dynamic shapes, uncountable layers, odd graphs
        return None
    return None
