"""Feature backbones: the BACKBONES registry, the FeatureExtractor they build, and a
per-process resolver that builds each backbone once and reuses it across trials.

A backbone factory takes the dataset (the domain classifier is trained on it)
and a weights option (`--inception-weights`; ignored by `domain`) and returns a
FeatureExtractor. Entries are lazy, so listing and validating names imports no
TensorFlow.

Extractors are plain Keras models called eagerly: their variables are eager
tf.Variables, which `keras.backend.clear_session()` (called by the worker at
the start of every trial) leaves alone, so a built extractor stays valid.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from suite.data import ImageData
from suite.errors import GenbenchError, SpecError
from suite.registry import Registry

# Images go through a backbone in chunks of at most this many (Inception at 299x299
# needs ~25 MB of activations per image).
DEFAULT_CHUNK = 256
# Fewest real and fake samples an evaluation accepts: k-NN precision/recall (k=3)
# and KID subsets (half the samples) need a handful; FD wants far more to mean much.
MIN_EVAL_SAMPLES = 10


class FeatureExtractor:
    """Images float32 (N, H, W, C) in [0, 1] -> features (N, d), and logits when it has them.

    `weights_id` names the exact weights (results are comparable only between
    equal ids); `resize_method` says what happens to images before the network.
    """

    name: str = ""
    weights_id: str = ""
    resize_method: str = ""
    feature_dim: int = 0
    has_logits: bool = False

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Features (N, d) and logits (N, classes) or None, in one pass."""
        raise NotImplementedError

    def images_to_features(self, images: np.ndarray) -> np.ndarray:
        return self.images_to_outputs(images)[0]

    def images_to_logits(self, images: np.ndarray) -> np.ndarray:
        if not self.has_logits:
            raise ValueError(f"backbone {self.name!r} ({self.weights_id}) has no logits")
        logits = self.images_to_outputs(images)[1]
        assert logits is not None
        return logits


class KerasFeatureExtractor(FeatureExtractor):
    """A Keras model with outputs [features] or [features, logits], and a preprocessing
    function (a TensorFlow function of the [0, 1] images) applied before it."""

    def __init__(self, name: str, network: Any, preprocess: Callable[[Any], Any],
                 weights_id: str, resize_method: str, chunk: int = DEFAULT_CHUNK) -> None:
        self.name, self.network, self.weights_id = name, network, weights_id
        self.preprocess, self.resize_method, self.chunk = preprocess, resize_method, chunk
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


# A factory: (dataset, weights option) -> FeatureExtractor.
BackboneFactory = Callable[[ImageData, str | None], FeatureExtractor]
BACKBONES: Registry[BackboneFactory] = Registry("backbone")
BACKBONES.add("domain", "suite.metrics.domain:build_domain_extractor",
              needs_labels=True, per_dataset=True)
BACKBONES.add("inception", "suite.metrics.inception:build_inception_extractor",
              needs_labels=False, per_dataset=False)

_BUILT: dict[tuple, FeatureExtractor] = {}


def _dataset_identity(data: ImageData) -> tuple:
    return (data.name, data.source, data.train_split, data.x_train.shape)


def get_backbone(name: str, data: ImageData, weights: str | None = None) -> FeatureExtractor:
    """The backbone `name` for `data`, built once per process and reused afterwards."""
    tags = BACKBONES.tags(name)
    key = (name, _dataset_identity(data) if tags["per_dataset"] else None,
           weights if name == "inception" else None)
    if key not in _BUILT:
        _BUILT[key] = BACKBONES.get(name)(data, weights)
    return _BUILT[key]


def resolve_backbones(names: Iterable[str], data: ImageData,
                      inception_weights: str | None = None) -> dict[str, FeatureExtractor]:
    return {name: get_backbone(name, data, inception_weights) for name in names}


def clear_backbone_cache() -> None:
    """Forget built backbones (tests; the on-disk caches stay)."""
    _BUILT.clear()


def check_eval_setup(trials: Iterable[Any], data_by_name: Mapping[str, ImageData],
                     inception_weights: str | None = None, source: str = "sweep") -> None:
    """Preflight, before any training: every trial's backbones exist and can be built.

    Raises SpecError (a GenbenchError) for too few eval samples, an unknown
    name in eval.backbones, `domain` on a dataset without labels, or Inception
    weights that cannot be found (or downloaded).
    """
    from suite.metrics.inception import locate_inception_weights

    inception_needed = False
    for trial in trials:
        data = data_by_name.get(trial.dataset)
        n_eval = len(data.x_eval) if data is not None else trial.eval.n_samples
        if min(trial.eval.n_samples, n_eval) < MIN_EVAL_SAMPLES:
            raise SpecError(source, "eval.n_samples",
                            f"n_samples {trial.eval.n_samples} with {n_eval} eval images of "
                            f"{trial.dataset}: too few for k-NN precision/recall and KID subsets",
                            f"use n_samples >= {MIN_EVAL_SAMPLES}, on a dataset with at least "
                            "as many eval images")
        for name in trial.eval.backbones:
            if name not in BACKBONES:
                raise SpecError(source, "eval.backbones", f"unknown backbone {name!r}",
                                f"use one or more of: {', '.join(BACKBONES.names())}")
            if BACKBONES.tags(name)["needs_labels"] and data is not None and not data.labelled:
                raise SpecError(source, "eval.backbones", unlabelled_domain_message(data.name),
                                "use `backbones: [inception]`, or give the dataset an integer "
                                "label array (`y` in the npz)")
            inception_needed |= name == "inception"
    if inception_needed:
        try:
            locate_inception_weights(inception_weights, download=True)
        except GenbenchError as exc:
            raise SpecError(source, "eval.backbones", f"inception: {exc}") from None


def unlabelled_domain_message(dataset: str) -> str:
    return (f"dataset {dataset!r} has no labels, so it cannot have a `domain` backbone "
            "(a classifier genbench trains on the labelled training split)")


def prepare_backbones(trials: Iterable[Any], data_by_name: Mapping[str, ImageData]) -> None:
    """Train (or load from the cache) every per-dataset backbone the trials use, now.

    Called before the first trial, so that the domain classifier's one-off
    training is not counted in a milestone's eval_time_s, and so that Horovod
    ranks never wait at a barrier while rank 0 trains it.
    """
    needed = {(name, trial.dataset) for trial in trials for name in trial.eval.backbones
              if BACKBONES.tags(name)["per_dataset"]}
    for name, dataset in sorted(needed):
        get_backbone(name, data_by_name[dataset])
