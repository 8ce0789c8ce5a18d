"""The `domain` backbone: a small CNN classifier genbench trains on the dataset itself.

Inception features describe ImageNet photographs at 299x299; for 28x28
grayscale digits they say little (the original study noted as much), and
their weights need a download. A classifier trained on the dataset's own
training split works offline, and its penultimate layer (128-d) gives a
Frechet distance in the data's own terms (`fd_domain`); its logits score
whether a conditional model drew the class it was asked for.

Training is seeded (initialisers, dropout, shuffling and augmentation) and
takes a fixed number of steps whatever the dataset size, about 30-60 s on 2
CPU cores. The weights are cached under `$GENBENCH_CACHE/domain/`, keyed by a
hash of the training data and of this architecture's version, so each dataset
is trained once per machine; concurrent processes wait for the one training.
`BACKBONE` (at the end) describes it to the registry and to evaluation.
Measured on the 8000/2000 holdout of ../shared/data (accuracy on the eval
split): MNIST 99.1% (36 s), CIFAR-10 61.9% (56 s; a small CNN on 8000 images).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from suite import schema
from suite.atomic import write_atomic
from suite.data import ImageData
from suite.errors import GenbenchError
from suite.metrics.backbone import LOGITS_DATASET, BackboneColumns, BackboneInfo
from suite.metrics.cache import arrays_to_hash, cache_root, file_lock, file_to_hash, safe_name
from suite.metrics.extractor import FeatureExtractor, KerasFeatureExtractor, seeded_construction

DOMAIN_DIR = "domain"
RESIZE_METHOD = "none (native resolution)"
FEATURE_LAYER = "features"


@dataclass(frozen=True)
class DomainClassifierConfig:
    """Architecture and training recipe; any change needs a new `version`
    (it is part of the cache key and of the weights id)."""

    version: str = "v1"
    conv_widths: tuple[int, ...] = (32, 64, 128)  # 3x3 conv + BN + ReLU, max-pool between
    feature_dim: int = 128  # the penultimate layer: the FD features
    dropout: float = 0.3
    steps: int = 800
    batch_size: int = 128
    lr: float = 2e-3  # Adam, cosine decay to 0 over `steps`
    max_shift: int = 2  # augmentation: random translation by up to this many pixels
    flip_colour_images: bool = True  # augmentation: horizontal flips, for RGB data only
    bn_momentum: float = 0.9  # fast-moving BN statistics: the run is only 800 steps
    seed: int = 0


DEFAULT_CONFIG = DomainClassifierConfig()


def build_domain_network(image_shape: tuple[int, int, int], num_classes: int,
                         config: DomainClassifierConfig = DEFAULT_CONFIG):
    """image in [0, 1] -> (penultimate features, class logits), every initialiser seeded."""
    import keras
    from keras import layers

    def he(i: int):
        return keras.initializers.HeNormal(seed=config.seed * 1000 + i)

    with seeded_construction(config.seed):
        image = keras.Input(image_shape, name="image")
        x = image
        for i, width in enumerate(config.conv_widths):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=he(i),
                              name=f"conv{i + 1}")(x)
            x = layers.BatchNormalization(momentum=config.bn_momentum, name=f"bn{i + 1}")(x)
            x = layers.ReLU()(x)
            if i < len(config.conv_widths) - 1:
                x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        features = layers.Dense(config.feature_dim, activation="relu", kernel_initializer=he(99),
                                name=FEATURE_LAYER)(x)
        dropped = layers.Dropout(config.dropout, seed=config.seed + 7)(features)
        logits = layers.Dense(num_classes, kernel_initializer=keras.initializers.GlorotUniform(
            seed=config.seed + 11), name="logits")(dropped)
        return keras.Model(image, [features, logits], name="domain_classifier")


def augment(x: np.ndarray, rng: np.random.Generator, max_shift: int, flip: bool) -> np.ndarray:
    """Random translations (zero padding) and optional horizontal flips of a batch."""
    n, h, w, _ = x.shape
    if max_shift:
        padded = np.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
        dy = rng.integers(0, 2 * max_shift + 1, n)
        dx = rng.integers(0, 2 * max_shift + 1, n)
        rows = (dy[:, None] + np.arange(h))[:, :, None]
        cols = (dx[:, None] + np.arange(w))[:, None, :]
        x = padded[np.arange(n)[:, None, None], rows, cols]
    if flip:
        flipped = rng.random(n) < 0.5
        x[flipped] = x[flipped, :, ::-1]
    return x


def train_domain_network(x_train: np.ndarray, y_train: np.ndarray, num_classes: int,
                         config: DomainClassifierConfig = DEFAULT_CONFIG):
    """Train a fresh classifier on uint8 images for `config.steps` steps; return it."""
    import keras

    network = build_domain_network(tuple(x_train.shape[1:]), num_classes, config)
    trainer = keras.Model(network.input, network.outputs[1])
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, config.steps)
    trainer.compile(optimizer=keras.optimizers.Adam(schedule),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng([config.seed, 0xD0])
    flip = config.flip_colour_images and x_train.shape[-1] == 3
    steps_per_pass = len(x_train) // config.batch_size
    if steps_per_pass < 1:
        raise GenbenchError(f"{len(x_train)} training images are too few to train the domain "
                            f"classifier (one batch is {config.batch_size})")
    done = 0
    while done < config.steps:  # passes over a fresh permutation, augmented anew
        steps = min(steps_per_pass, config.steps - done)
        idx = rng.permutation(len(x_train))[: steps * config.batch_size]
        images = augment(x_train[idx].astype(np.float32) / 255.0, rng, config.max_shift, flip)
        trainer.fit(images, y_train[idx].astype(np.int32), batch_size=config.batch_size,
                    epochs=1, shuffle=False, verbose=0)
        done += steps
    return network


def network_to_accuracy(network, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy on uint8 images."""
    hits = 0
    for start in range(0, len(x), batch):
        images = x[start:start + batch].astype(np.float32) / 255.0
        logits = network(images, training=False)[1]
        hits += int((np.argmax(np.asarray(logits), axis=1) == y[start:start + batch]).sum())
    return hits / len(x)


def domain_cache_name(data: ImageData, config: DomainClassifierConfig = DEFAULT_CONFIG
                      ) -> tuple[str, str]:
    """(file stem, data hash): the cache entry for this training data and recipe."""
    recipe = json.dumps(asdict(config), sort_keys=True).encode()
    data_hash = arrays_to_hash(data.x_train, data.y_train, np.frombuffer(recipe, np.uint8))
    return f"{safe_name(data.name)}-{config.version}-{data_hash[:16]}", data_hash


def domain_weights_path(data: ImageData, config: DomainClassifierConfig = DEFAULT_CONFIG
                        ) -> Path:
    """Where the classifier for this training data and recipe is cached."""
    return cache_root() / DOMAIN_DIR / f"{domain_cache_name(data, config)[0]}.weights.h5"


def load_or_train_domain_network(data: ImageData,
                                 config: DomainClassifierConfig = DEFAULT_CONFIG):
    """(network, metadata) for `data`: from the cache, else trained once and cached.

    Training happens under a file lock; processes that arrive meanwhile wait and
    then load the weights instead of training again. `metadata["trained_now"]`
    says whether this call trained (False: the cached weights were loaded).
    """
    if not data.labelled or data.y_train is None:
        raise GenbenchError(f"{BACKBONE.unlabelled_problem(data.name)}. Fix: give the dataset "
                            "integer labels (`y` in the npz), or choose a backbone that needs "
                            "none in eval.backbones")
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


def _train_once(data: ImageData, config: DomainClassifierConfig, path: Path, meta_path: Path):
    """Train and cache under the lock, unless another process did meanwhile (then None)."""
    with file_lock(path):
        if path.exists():
            return None
        return _train_and_save(data, config, path, meta_path)


def _train_and_save(data: ImageData, config: DomainClassifierConfig, path: Path,
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
