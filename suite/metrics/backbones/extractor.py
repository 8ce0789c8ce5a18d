"""KerasFeatureExtractor: a Keras network as a FeatureExtractor, and seeded construction.

Extractors are plain Keras models called eagerly: their variables are eager
tf.Variables, which `keras.backend.clear_session()` (called by the worker at
the start of every trial) leaves alone, so a built extractor stays valid.
No TensorFlow is imported until a forward pass is compiled.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from suite.metrics.backbones.base import BackboneInfo, FeatureExtractor

__all__ = ["DEFAULT_CHUNK", "FeatureExtractor", "KerasFeatureExtractor", "seeded_construction"]

# Images go through a backbone in chunks of at most this many (Inception at 299x299
# needs ~25 MB of activations per image).
DEFAULT_CHUNK = 256


class KerasFeatureExtractor(FeatureExtractor):
    """A Keras model with outputs [features] or [features, logits], and a preprocessing
    function (a TensorFlow function of the [0, 1] images) applied before it."""

    def __init__(self, info: BackboneInfo, network: Any, preprocess: Callable[[Any], Any],
                 weights_id: str, chunk: int = DEFAULT_CHUNK,
                 meta: Mapping[str, Any] | None = None) -> None:
        self.info, self.network, self.weights_id = info, network, weights_id
        self.preprocess, self.chunk = preprocess, chunk
        self.meta: dict[str, Any] = dict(meta or {})  # e.g. training accuracy, for reports
        outputs = network.outputs
        self.has_logits = len(outputs) == 2
        self.feature_dim = int(outputs[0].shape[-1])
        self._forwards: dict[tuple[int, ...], Callable] = {}

    def _forward(self, image_shape: tuple[int, ...]) -> Callable:
        """One compiled graph per image shape, any batch size: preprocessing sees static
        height, width and channels (e.g. to tile grayscale to RGB)."""
        if image_shape not in self._forwards:
            import tensorflow as tf

            network, preprocess = self.network, self.preprocess

            def forward(images):
                out = network(preprocess(images), training=False)
                return tuple(out) if isinstance(out, list | tuple) else (out,)

            spec = tf.TensorSpec((None, *image_shape), tf.float32)
            self._forwards[image_shape] = tf.function(forward, input_signature=[spec])
        return self._forwards[image_shape]

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"need images (N, H, W, C); got shape {x.shape}")
        features, logits = [], []
        forward = self._forward(tuple(x.shape[1:]))
        for start in range(0, len(x), self.chunk):
            out = forward(x[start:start + self.chunk])
            features.append(out[0].numpy())
            if self.has_logits:
                logits.append(out[1].numpy())
        feats = np.concatenate(features) if features else np.zeros((0, self.feature_dim), "f4")
        return feats, (np.concatenate(logits) if self.has_logits else None)


@contextmanager
def seeded_construction(seed: int) -> Iterator[None]:
    """Build Keras layers with default initialisers reproducibly, without side effects.

    Keras draws a default initialiser seed from Python's `random` for every
    layer made without an explicit one; seeding it here makes random weights
    repeatable, and restoring it afterwards leaves the trial's own random
    stream exactly where it was (a backbone may be built mid-trial).
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
