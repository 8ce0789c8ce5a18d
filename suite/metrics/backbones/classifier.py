"""A small CNN image classifier and its training recipe: a dataset-trained backbone's
network, and the classifier that the classification accuracy score trains on samples.

Training is seeded (initialisers, dropout, shuffling and augmentation) and in
proportion to the data: `config.epochs` passes over the images, at most
`config.steps` steps, so 8,000 images get the full 250 steps (4 passes) and a
240-image file about twenty. 250 steps, not the 800 first chosen: on MNIST they
reach 98.55% eval accuracy (98.6-98.75% after 300-400, 99.2% after 800), in about
60 s instead of 166 s on a 2-core AVX2 CPU, which the first run (`make run`) pays.
A dataset that needs more declares its own budget (`classifier_config`; CIFAR-10
keeps 800).

One compiled train step serves every batch (`train_on_batch`): a `fit()` call per
pass cost about 0.5 s of set-up each, which made 800 one-step passes over a tiny
dataset slower than training on 8,000 images.

Pure numpy until a network is built: Keras is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from suite.common.errors import GenbenchError
from suite.data.catalog import classifier_steps
from suite.metrics.backbones.extractor import seeded_construction
from suite.models.optimizers import one_replica_optimizer

FEATURE_LAYER = "features"


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture (`version`) and training recipe. Every field is hashed into the
    cache key and weights id of a network trained with it, so any change retrains."""

    version: str = "v1"  # the architecture below; a change to it needs a new version
    conv_widths: tuple[int, ...] = (32, 64, 128)  # 3x3 conv + BN + ReLU, max-pool between
    feature_dim: int = 128  # the penultimate layer: the FD features
    dropout: float = 0.3
    steps: int = 250  # at most this many steps ...
    epochs: int = 20  # ... and at most this many passes over the images
    batch_size: int = 128
    lr: float = 2e-3  # Adam, cosine decay to 0 over the steps actually taken
    max_shift: int = 2  # augmentation: random translation by up to this many pixels
    flip_colour_images: bool = True  # augmentation: horizontal flips, for RGB data only
    bn_momentum: float = 0.9  # fast-moving BN statistics: the runs are short
    seed: int = 0


DEFAULT_CONFIG = ClassifierConfig()


def classifier_config(dataset: str, config: ClassifierConfig = DEFAULT_CONFIG
                      ) -> ClassifierConfig:
    """`config` with the dataset's own step budget, if its catalog entry declares one."""
    steps = classifier_steps(dataset)
    return config if steps is None else replace(config, steps=steps)


def build_classifier(image_shape: tuple[int, int, int], num_classes: int,
                     config: ClassifierConfig = DEFAULT_CONFIG):
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
        return keras.Model(image, [features, logits], name="image_classifier")


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


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float images are taken as already in [0, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return np.asarray(images, dtype=np.float32)


def training_steps(n_images: int, config: ClassifierConfig = DEFAULT_CONFIG) -> int:
    """Steps in proportion to the data: `epochs` passes of full batches, at most `steps`."""
    steps_per_pass = n_images // config.batch_size
    if steps_per_pass < 1:
        raise GenbenchError(f"{n_images} training images are too few to train the "
                            f"classifier (one batch is {config.batch_size})")
    return min(config.steps, config.epochs * steps_per_pass)


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, num_classes: int,
                     config: ClassifierConfig = DEFAULT_CONFIG):
    """Train a fresh classifier on images (uint8, or float in [0, 1]); return it."""
    import keras

    steps = training_steps(len(x_train), config)
    network = build_classifier(tuple(x_train.shape[1:]), num_classes, config)
    trainer = keras.Model(network.input, network.outputs[1])
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, steps)
    trainer.compile(optimizer=one_replica_optimizer(keras.optimizers.Adam(schedule)),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng([config.seed, 0xD0])
    flip = config.flip_colour_images and x_train.shape[-1] == 3
    batch = config.batch_size
    steps_per_pass = len(x_train) // batch
    done = 0
    while done < steps:  # passes over a fresh permutation, augmented anew
        take = min(steps_per_pass, steps - done)
        idx = rng.permutation(len(x_train))[: take * batch]
        images = augment(to_unit_float(x_train[idx]), rng, config.max_shift, flip)
        labels = np.asarray(y_train[idx], dtype=np.int32)
        for start in range(0, take * batch, batch):
            trainer.train_on_batch(images[start:start + batch], labels[start:start + batch])
        done += take
    return network


def classifier_accuracy(network, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """Top-1 accuracy on images (uint8, or float in [0, 1])."""
    hits = 0
    for start in range(0, len(x), batch):
        logits = network(to_unit_float(x[start:start + batch]), training=False)[1]
        hits += int((np.argmax(np.asarray(logits), axis=1) == y[start:start + batch]).sum())
    return hits / len(x)
