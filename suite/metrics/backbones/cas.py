"""Classification accuracy score (Ravuri & Vinyals 2019), as StudioGAN reports it.

A conditional model's generated samples, with the labels they were asked for,
train a fresh classifier (the architecture and recipe of classifier.py, the
same network the dataset-trained backbone uses); its top-1 accuracy on the
real eval split is `cas`. A model whose samples carry their class well and
cover each class's variety gets close to the accuracy of the same classifier
trained on real images; one that ignores its labels gets chance.

Opt-in (`eval.cas: true`): it trains a network at every milestone, about as
long as the backbone's own one-off training (250 steps for 10,000 samples, 800 for
CIFAR-10: the dataset's step budget, suite.metrics.backbones.classifier).
Deterministic from (trial seed, epoch): the samples are, and so is every seed
of the classifier (initialisers, dropout, shuffling and augmentation). The row
records the protocol in `cas_protocol`. Unconditional models, eval splits
without labels and unusable samples give NaN, with the reason as protocol.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from suite.data.catalog import ImageData
from suite.metrics.backbones.classifier import (
    DEFAULT_CONFIG,
    ClassifierConfig,
    classifier_accuracy,
    classifier_config,
    train_classifier,
    training_steps,
)
from suite.store import schema

CAS_SALT = 0xCA5  # separates the classifier's seeds from every other stream of a trial
SEED_RANGE = 2**20  # Keras seeds are small integers (they are offset per layer)


def cas_config(dataset: str, seed: tuple[int, int]) -> ClassifierConfig:
    """The dataset's classifier recipe, seeded from (trial seed, epoch)."""
    state = np.random.SeedSequence([CAS_SALT, *seed]).generate_state(1)[0]
    return replace(classifier_config(dataset), seed=int(state % SEED_RANGE))


def cas_protocol(n_samples: int, data: ImageData, config: ClassifierConfig) -> str:
    """One line: what was trained on what, and what it was tested on."""
    return (f"classifier {config.version} ({training_steps(n_samples, config)} steps of "
            f"{config.batch_size}, seed {config.seed}) trained on {n_samples} generated images "
            f"with balanced labels; top-1 accuracy on the {len(data.x_eval)} real images of "
            f"{data.eval_split}")


def samples_to_cas(images: np.ndarray, labels: np.ndarray, data: ImageData,
                   seed: tuple[int, int]) -> tuple[float, str]:
    """(accuracy on the real eval split, protocol) of a classifier trained on the samples."""
    config = cas_config(data.name, seed)
    network = train_classifier(images, labels, data.num_classes, config)
    accuracy = classifier_accuracy(network, data.x_eval, data.y_eval)
    return accuracy, cas_protocol(len(images), data, config)


def cas_columns(fake: np.ndarray | None, labels: np.ndarray | None, data: ImageData,
                seed: tuple[int, int]) -> dict[str, object]:
    """`cas` and `cas_protocol` for one milestone; `fake` is None when unusable."""
    reason = None
    if labels is None:
        reason = "not measured: an unconditional model has no labelled samples"
    elif data.y_eval is None:
        reason = f"not measured: the eval split of {data.name!r} has no labels"[:120]
    elif fake is None:
        reason = "not measured: the samples were not finite"
    elif len(fake) < DEFAULT_CONFIG.batch_size:
        reason = (f"not measured: {len(fake)} samples, fewer than one training batch "
                  f"({DEFAULT_CONFIG.batch_size})")
    if reason is not None:
        return {schema.CAS: math.nan, schema.CAS_PROTOCOL: reason}
    accuracy, protocol = samples_to_cas(fake, labels, data, seed)
    return {schema.CAS: accuracy, schema.CAS_PROTOCOL: protocol}
