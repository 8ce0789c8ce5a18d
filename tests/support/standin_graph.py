"""A seeded random GraphDef with the interface and the quirks of the 2015 Inception graph.

The real `classify_image_graph_def.pb` (95 MB) cannot be fetched offline, so
the `random` weights option and the tests run this stand-in through the very
same loading and feature path. It reproduces what that path must cope with:

- the input chain `DecodeJpeg/contents` -> `DecodeJpeg` -> `Cast` -> `ExpandDims`
  (one image, batch 1), recorded `_output_shapes` that pin the batch to 1;
- `ResizeBilinear` (TF 1 legacy: no half-pixel centres) to `image_size`, then
  `Sub` 128 and `Mul` 1/128, inside the graph;
- a GraphDef producer version older than 9 with a `BatchNormWithGlobalNormalization`
  op, and the old `Concat` op (concat_dim first), as in the 2015 file;
- `pool_3` (an AvgPool to 1x1, `feature_dim` channels), `pool_3/_reshape` to a
  hard-coded [1, feature_dim], and `softmax/logits/MatMul` with `softmax/weights`
  (feature_dim x classes), `softmax/logits` (bias) and `softmax`.

Weights are drawn from numpy's Generator with `seed` (He scaling), so a seed
gives the same bytes every time. The numbers it produces mean nothing.
"""

from __future__ import annotations

import numpy as np

OLD_PRODUCER = 5  # below 9, where BatchNormWithGlobalNormalization was removed
STEM_CHANNELS = 16
POOLED_SIZE = 8  # the real graph's map before pool_3 is 8x8


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def build_standin_graph(seed: int = 0, image_size: int = 299, feature_dim: int = 2048,
                        classes: int = 1008) -> bytes:
    """Serialized GraphDef bytes (see the module docstring); feature_dim must be even."""
    import tensorflow as tf

    if feature_dim % 2 or feature_dim < 2 or classes < 2 or image_size < 3:
        raise ValueError("need an even feature_dim >= 2, classes >= 2 and image_size >= 3")
    rng = np.random.default_rng(seed)
    half = feature_dim // 2
    stem_size = (image_size - 3) // 2 + 1
    window = max(1, stem_size // POOLED_SIZE)
    pooled = (stem_size - window) // window + 1
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, (), name="DecodeJpeg/contents")
        x = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        x = tf.expand_dims(tf.cast(x, tf.float32, name="Cast"), 0, name="ExpandDims")
        size = tf.constant([image_size, image_size], tf.int32, name="ResizeBilinear/size")
        x = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False,
                                      half_pixel_centers=False, name="ResizeBilinear")
        x = tf.multiply(tf.subtract(x, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        kernel = tf.constant(he_normal(rng, (3, 3, 3, STEM_CHANNELS), 27),
                             name="conv/conv2d_params")
        x = tf.nn.conv2d(x, kernel, 2, "VALID", name="conv/Conv2D")
        for part, value in (("moving_mean", 0.1), ("moving_variance", 1.5), ("beta", 0.05),
                            ("gamma", 1.0)):
            tf.constant(np.full(STEM_CHANNELS, value, np.float32), name=f"conv/batchnorm/{part}")
        x = tf.identity(x, name="conv/batchnorm")  # becomes the old batch-norm op below
        x = tf.nn.relu(x, name="conv")
        x = tf.nn.avg_pool2d(x, window, window, "VALID", name="pool")
        branches = []
        for scope in ("mixed/conv", "mixed/tower/conv"):
            w = tf.constant(he_normal(rng, (1, 1, STEM_CHANNELS, half), STEM_CHANNELS),
                            name=f"{scope}/conv2d_params")
            branches.append(tf.nn.relu(tf.nn.conv2d(x, w, 1, "VALID", name=f"{scope}/Conv2D"),
                                       name=scope))
        axis = tf.constant(3, tf.int32, name="mixed/join/concat_dim")
        x = tf.raw_ops.Concat(concat_dim=axis, values=branches, name="mixed/join")
        pool = tf.nn.avg_pool2d(x, pooled, 1, "VALID", name="pool_3")
        flat = tf.reshape(pool, tf.constant([1, feature_dim], name="pool_3/_reshape/shape"),
                          name="pool_3/_reshape")
        weights = tf.constant(he_normal(rng, (feature_dim, classes), feature_dim) * 4.0,
                              name="softmax/weights")
        biases = tf.constant(rng.standard_normal(classes).astype(np.float32) * 0.1,
                             name="softmax/biases")
        logits = tf.nn.bias_add(tf.matmul(flat, weights, name="softmax/logits/MatMul"), biases,
                                name="softmax/logits")
        tf.nn.softmax(logits, name="softmax")
    graph_def = graph.as_graph_def(add_shapes=True)
    for node in graph_def.node:
        if node.name == "conv/batchnorm":  # the 2015 graph's batch norm, which TF 2 cannot build
            node.op = "BatchNormWithGlobalNormalization"
            node.input[:] = ["conv/Conv2D"] + [f"conv/batchnorm/{p}" for p in (
                "moving_mean", "moving_variance", "beta", "gamma")]
            node.attr["variance_epsilon"].f = 0.001
            node.attr["scale_after_normalization"].b = True
    graph_def.versions.producer = OLD_PRODUCER
    graph_def.versions.min_consumer = 0
    return graph_def.SerializeToString(deterministic=True)
