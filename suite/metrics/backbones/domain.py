"""The `domain` backbone: a small CNN classifier genbench trains on the dataset itself.

Inception features describe ImageNet photographs at 299x299; for 28x28
grayscale digits they say little (the original study noted as much), and
their weights need a download. A classifier trained on the dataset's own
training split works offline, and its penultimate layer (128-d) gives a
Frechet distance in the data's own terms (`fd_domain`); its logits score
whether a conditional model drew the class it was asked for.

Training is seeded (initialisers, dropout, shuffling and augmentation) and in
proportion to the data (suite/metrics/backbones/classifier.py: 20 passes, at most 250
steps, 800 for CIFAR-10), about 1 minute on 2 AVX2 CPU cores for 8,000 MNIST
images. The weights are cached under `$GENBENCH_CACHE/domain/`, keyed by a hash of
the training data and of the whole recipe (architecture version included), so each
dataset is trained once per machine; concurrent processes wait for the one training.
`BACKBONE` (at the end) describes it to the registry and to evaluation.
Measured on the 8000/2000 holdout of ../shared/data (accuracy on the eval
split): MNIST 98.55% (250 steps), CIFAR-10 61.9% (800 steps; a small CNN on 8,000
images).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from suite.common.atomic import write_atomic
from suite.common.errors import GenbenchError
from suite.data.catalog import ImageData
from suite.metrics.backbones.base import LOGITS_DATASET, BackboneColumns, BackboneInfo
from suite.metrics.backbones.classifier import (
    DEFAULT_CONFIG,
    FEATURE_LAYER,
    ClassifierConfig,
    build_classifier,
    classifier_accuracy,
    classifier_config,
    train_classifier,
)
from suite.metrics.backbones.extractor import FeatureExtractor, KerasFeatureExtractor
from suite.metrics.cache import arrays_to_hash, cache_root, file_lock, file_to_hash, safe_name
from suite.store import schema

DOMAIN_DIR = "domain"
RESIZE_METHOD = "none (native resolution)"

# The architecture and recipe live in classifier.py (the classification accuracy score
# trains the same network on generated samples); these names are the backbone's.
DomainClassifierConfig = ClassifierConfig


def build_domain_network(image_shape: tuple[int, int, int], num_classes: int,
                         config: ClassifierConfig = DEFAULT_CONFIG):
    """image in [0, 1] -> (penultimate features, class logits), every initialiser seeded."""
    return build_classifier(image_shape, num_classes, config)


def train_domain_network(x_train: np.ndarray, y_train: np.ndarray, num_classes: int,
                         config: ClassifierConfig = DEFAULT_CONFIG):
    """Train a fresh classifier on uint8 images, in proportion to their number; return it."""
    return train_classifier(x_train, y_train, num_classes, config)


def network_to_accuracy(network, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy on uint8 images."""
    return classifier_accuracy(network, x, y, batch)


def domain_cache_name(data: ImageData, config: ClassifierConfig | None = None
                      ) -> tuple[str, str]:
    """(file stem, data hash): the cache entry for this training data and recipe."""
    config = config or classifier_config(data.name)
    recipe = json.dumps(asdict(config), sort_keys=True).encode()
    data_hash = arrays_to_hash(data.x_train, data.y_train, np.frombuffer(recipe, np.uint8))
    return f"{safe_name(data.name)}-{config.version}-{data_hash[:16]}", data_hash


def domain_weights_path(data: ImageData, config: ClassifierConfig | None = None
                        ) -> Path:
    """Where the classifier for this training data and recipe is cached."""
    return cache_root() / DOMAIN_DIR / f"{domain_cache_name(data, config)[0]}.weights.h5"


def load_or_train_domain_network(data: ImageData, config: ClassifierConfig | None = None):
    """(network, metadata) for `data`: from the cache, else trained once and cached.

    Training happens under a file lock; processes that arrive meanwhile wait and
    then load the weights instead of training again. `metadata["trained_now"]`
    says whether this call trained (False: the cached weights were loaded).
    """
    if not data.labelled or data.y_train is None:
        raise GenbenchError(f"{BACKBONE.unlabelled_problem(data.name)}. Fix: give the dataset "
                            "integer labels (`y` in the npz), or choose a backbone that needs "
                            "none in eval.backbones")
    config = config or classifier_config(data.name)
    stem, data_hash = domain_cache_name(data, config)
    path = cache_root() / DOMAIN_DIR / f"{stem}.weights.h5"
    meta_path = path.with_name(f"{stem}.json")
    network = None if path.exists() else _train_once(data, config, path, meta_path)
    trained_now = network is not None
    if network is None:
        network = build_domain_network(data.image_shape, data.num_classes, config)
        network.load_weights(path)
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["weights_path"] = str(path)
    meta["trained_now"] = trained_now
    # The data hash names what the weights were trained on; the file hash, the
    # weights themselves (training is seeded, but not bit-identical across machines).
    meta["weights_id"] = f"domain-{config.version}-{data_hash[:12]}-{file_to_hash(path)[:8]}"
    return network, meta


def _train_once(data: ImageData, config: ClassifierConfig, path: Path, meta_path: Path):
    """Train and cache under the lock, unless another process did meanwhile (then None)."""
    with file_lock(path):
        if path.exists():
            return None
        return _train_and_save(data, config, path, meta_path)


def _train_and_save(data: ImageData, config: ClassifierConfig, path: Path,
                    meta_path: Path):
    started = time.perf_counter()
    network = train_domain_network(data.x_train, data.y_train, data.num_classes, config)
    seconds = time.perf_counter() - started
    accuracy = (network_to_accuracy(network, data.x_eval, data.y_eval)
                if data.y_eval is not None else float("nan"))
    meta = {"dataset": data.name, "source": data.source, "train_split": data.train_split,
            "n_train": int(len(data.x_train)), "eval_split": data.eval_split,
            "eval_accuracy": accuracy, "train_seconds": round(seconds, 1),
            "config": asdict(config)}
    write_atomic(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    write_atomic(path, lambda tmp: network.save_weights(tmp))  # last: its presence = done
    return network


def build_domain_extractor(data: ImageData, weights: str | None = None) -> FeatureExtractor:
    """The backbone's factory (`weights` is unused: the classifier is trained here).
    `.meta` carries the training record (eval accuracy, seconds, trained_now)."""
    network, meta = load_or_train_domain_network(data)
    return KerasFeatureExtractor(BACKBONE, network, preprocess=lambda images: images,
                                 weights_id=meta["weights_id"], meta=meta)


BACKBONE = BackboneInfo(
    name="domain",
    build=build_domain_extractor,
    columns=BackboneColumns(
        fd=schema.FD_DOMAIN, kid=schema.KID_DOMAIN, kid_std=schema.KID_DOMAIN_STD,
        precision=schema.PRECISION_DOMAIN, recall=schema.RECALL_DOMAIN,
        weights_id=schema.DOMAIN_WEIGHTS_ID, class_accuracy=schema.CLASS_ACCURACY,
        intra_class_fd=schema.INTRA_CLASS_FD),
    logits=LOGITS_DATASET,
    needs_labels=True,
    per_dataset=True,
    takes_weights=False,
    resize_method=RESIZE_METHOD,
    protocol=(f"[0, 1] images at native resolution -> {DEFAULT_CONFIG.version} CNN trained on "
              f"the dataset's training split; features: {FEATURE_LAYER} "
              f"({DEFAULT_CONFIG.feature_dim}-d); logits: the dataset's classes"),
    needs_labels_reason="a classifier genbench trains on the labelled training split",
)
