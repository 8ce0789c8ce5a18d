"""evaluate_milestone: a model at one milestone -> the sample-quality columns of its row.

Protocol (recorded in the row as n_real, n_fake, eval_split, weights ids and
resize method):

- fake: `eval.n_samples` images generated in batches of `eval.batch_size`
  from noise drawn once from a numpy Generator seeded by (trial seed, epoch),
  so an evaluation is deterministic and repeating it gives the same numbers;
  conditional models get balanced labels (0, 1, ..., K-1, 0, 1, ...);
- real: the first n_real = min(n_samples, len(eval split)) images of the
  dataset's eval split (already in a fixed random order), never the training
  images; their features and statistics are cached per backbone;
- per backbone, into the columns its BackboneInfo declares (suite/metrics/scores.py):
  Frechet distance, KID (mean, std over 100 subsets of min(1000, n/2) so that
  subsets differ), precision, recall, density and coverage (k=3, from one set of
  k-NN balls), FD_inf (FD at fake sample sizes n/5, n/4, n/3, n/2 and n, averaged
  over the folds of a seeded partition, extrapolated by FD = FD_inf + c/n), and its
  weights id;
- beside each of FD, KID, precision, recall, density and coverage, its real-vs-real
  noise floor: the same score between two disjoint real subsets of the eval
  split, n_floor = min(n_real, len(eval split) // 2) images each, computed once
  with the reference statistics and cached with them;
- with `eval.cas: true`, for conditional models: the classification accuracy
  score (suite/metrics/backbones/cas.py);
- backbones whose logits are ImageNet-style classes: the Inception Score of
  the fake samples (NaN when the weights have no classifier top);
- backbones whose logits are the dataset's own classes, for conditional
  models: class_accuracy (the classifier's top-1 agreement with the requested
  label) and intra_class_fd (mean over classes of the FD between that class's
  fake and real features; with few samples per class it is biased upwards, so
  compare it at equal n);
- always: spectral_distance and checkerboard_score of fake vs real pixels;
- VAE families: test_elbo, the mean single-sample ELBO (nats per image) of the
  n_real eval images, and test_recon_error, the mean squared error per pixel of
  sigmoid(decoder(encoder mean)) against them.

Images whose values are not finite give NaN metrics, not a crash. No backbone is
named here: each extractor's `info` says what it provides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from suite.data.catalog import ImageData
from suite.metrics.backbones.base import (
    LOGITS_DATASET,
    LOGITS_IMAGENET,
    BackboneInfo,
    FeatureExtractor,
)
from suite.metrics.backbones.cas import cas_columns
from suite.metrics.blas import blas_threads
from suite.metrics.cache import (
    RealReference,
    ReferenceKey,
    arrays_to_hash,
    features_to_reference,
    load_or_compute_reference,
)
from suite.metrics.fid import features_to_stats, prepare_reference, stats_to_fd
from suite.metrics.inception_score import logits_to_inception_score
from suite.metrics.scores import (
    KID_SEED,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    PR_NEIGHBOURS,
    SCORES_PROTOCOL,
    features_to_floor,
    kid_subset_size,
    plan_floor,
    reference_to_scores,
)
from suite.metrics.spectral import checkerboard_score, spectral_distance
from suite.store import schema

__all__ = ["KID_SEED", "KID_SUBSETS", "KID_SUBSET_SIZE", "PR_NEIGHBOURS", "backbone_columns",
           "evaluate_milestone", "kid_subset_size", "real_reference", "sample_column_names",
           "sample_columns"]

NOISE_SALT = 0xE7A1  # separates evaluation noise from the sample-grid noise
IS_SPLITS = 10


def evaluate_milestone(model, data: ImageData, trial, backbones: Mapping[str, FeatureExtractor],
                       epoch: int) -> dict[str, Any]:
    """Row columns measuring `model`'s samples at `epoch` (see the module docstring).

    `backbones` maps names to built extractors (features.resolve_backbones builds
    those of `trial.eval.backbones` once per process).
    """
    for name, backbone in backbones.items():
        if not isinstance(backbone, FeatureExtractor):
            raise TypeError(f"backbones[{name!r}] is a {type(backbone).__name__}, not a built "
                            "FeatureExtractor (see suite.metrics.backbones.registry."
                            "resolve_backbones)")
    with blas_threads(1):  # small matrices: extra BLAS threads only contend (see blas.py)
        return _evaluate(model, data, trial, backbones, epoch)


def _evaluate(model, data: ImageData, trial, backbones: Mapping[str, FeatureExtractor],
              epoch: int) -> dict[str, Any]:
    from suite.models import is_conditional, model_family

    spec = trial.eval
    n_fake = int(spec.n_samples)
    n_real = min(n_fake, len(data.x_eval))
    conditional = is_conditional(trial.model)
    labels = balanced_labels(n_fake, data.num_classes) if conditional else None
    rng = np.random.default_rng([NOISE_SALT, trial.seed, epoch])
    noise = rng.standard_normal((n_fake, trial.latent_dim)).astype(np.float32)
    fake = generate_images(model, noise, labels, spec.batch_size)
    real = data.x_eval[:n_real].astype(np.float32) / 255.0
    real_labels = None if data.y_eval is None else data.y_eval[:n_real]

    row: dict[str, Any] = {
        schema.N_REAL: n_real, schema.N_FAKE: n_fake, schema.EVAL_SPLIT: data.eval_split,
        schema.RESIZE_METHOD: "; ".join(f"{name}: {b.resize_method}"
                                        for name, b in backbones.items()),
    }
    for backbone in backbones.values():
        row[backbone.info.columns.weights_id] = backbone.weights_id
        if backbone.info.columns.protocol is not None:  # e.g. fid_protocol
            row[backbone.info.columns.protocol] = backbone.describe_protocol(
                n_real, n_fake, data.eval_split)
    finite = bool(np.isfinite(fake).all())
    if finite:
        row.update(sample_columns(fake, labels, real, real_labels, data, backbones))
    else:  # recorded, not raised: the row says the samples were unusable
        row.update(dict.fromkeys(sample_column_names(backbones, conditional), math.nan))
    if spec.cas:
        row.update(cas_columns(fake if finite else None, labels, data, seed=(trial.seed, epoch)))
    if model_family(trial.model) == "vae":
        row.update(vae_columns(model, data.x_eval[:n_real], real_labels if conditional else None,
                               spec.batch_size, seed=(trial.seed, epoch)))
    return row


def sample_columns(fake: np.ndarray, labels: np.ndarray | None, real: np.ndarray,
                   real_labels: np.ndarray | None, data: ImageData,
                   backbones: Mapping[str, FeatureExtractor]) -> dict[str, float]:
    """Every metric of the generated images against the real ones."""
    row = {schema.SPECTRAL_DISTANCE: spectral_distance(fake, real),
           schema.CHECKERBOARD_SCORE: checkerboard_score(fake, real)}
    for name, backbone in backbones.items():
        reference = real_reference(backbone, name, data, len(real))
        fake_features, fake_logits = backbone.images_to_outputs(fake)
        row.update(backbone_columns(backbone.info, reference, fake_features))
        row.update(logits_columns(backbone.info, fake_features, fake_logits, labels, reference))
        if backbone.info.columns.floors:
            row[schema.N_FLOOR] = reference.n_floor
    return row


def sample_column_names(backbones: Mapping[str, FeatureExtractor],
                        conditional: bool) -> list[str]:
    """The columns `sample_columns` fills for these backbones and this kind of model."""
    names = [schema.SPECTRAL_DISTANCE, schema.CHECKERBOARD_SCORE]
    for backbone in backbones.values():
        names += backbone.info.column_names(conditional) + backbone.info.columns.qualified
    if any(backbone.info.columns.floors for backbone in backbones.values()):
        names.append(schema.N_FLOOR)
    return names


def balanced_labels(n: int, num_classes: int) -> np.ndarray:
    return (np.arange(n) % num_classes).astype(np.int32)


def generate_images(model, noise: np.ndarray, labels: np.ndarray | None,
                    batch_size: int) -> np.ndarray:
    """float32 images in [0, 1], generated batch by batch (inference mode)."""
    out = []
    for start in range(0, len(noise), batch_size):
        batch_labels = None if labels is None else labels[start:start + batch_size]
        out.append(np.asarray(model.generate(noise[start:start + batch_size], batch_labels),
                              dtype=np.float32))
    return np.concatenate(out)


def real_reference(backbone: FeatureExtractor, name: str, data: ImageData,
                   n_real: int) -> RealReference:
    """The cached real side for this backbone: statistics, features and k-NN radii of the
    first n_real eval images, and the real-vs-real floor (suite/metrics/scores.py).

    The images are pushed through the backbone once: the reference's and the
    floor's (the same ones when the reference is the whole split).
    """
    plan = plan_floor(len(data.x_eval), n_real)
    extra = np.setdiff1d(plan.indices, np.arange(n_real))  # floor images beyond the reference
    needed = np.concatenate([np.arange(n_real), extra])
    labels = None if data.y_eval is None else data.y_eval[:n_real]
    key = ReferenceKey(dataset=data.name, split=data.eval_split, backbone=name,
                       weights_id=backbone.weights_id, n=n_real, resize=backbone.resize_method,
                       data_hash=arrays_to_hash(data.x_eval[:n_real], labels, data.x_eval[extra],
                                                plan.indices),
                       protocol=SCORES_PROTOCOL)

    def compute() -> RealReference:
        images = data.x_eval[needed].astype(np.float32) / 255.0
        features = backbone.images_to_features(images)
        reference = features_to_reference(features[:n_real], labels, neighbours=PR_NEIGHBOURS)
        position = np.empty(len(data.x_eval), dtype=np.int64)
        position[needed] = np.arange(len(needed))
        floor = features_to_floor(features[position[plan.first]], features[position[plan.second]])
        return replace(reference, floor=floor, n_floor=plan.n_floor)

    return load_or_compute_reference(key, compute)


def backbone_columns(info: BackboneInfo, reference: RealReference,
                     fake_features: np.ndarray) -> dict[str, float]:
    """FD, KID (mean, std), precision, recall, density, coverage and FD_inf of fake
    against real features, and the floors: the columns the backbone declares."""
    columns = info.columns
    scores = reference_to_scores(reference, fake_features, fd_inf=columns.fd_inf is not None)
    row = dict(zip(columns.distribution, (scores["fd"], scores["kid"], scores["kid_std"],
                                          scores["precision"], scores["recall"]), strict=True))
    for metric in ("density", "coverage", "fd_inf"):
        if getattr(columns, metric) is not None:
            row[getattr(columns, metric)] = scores[metric]
    for metric, column in columns.floors.items():
        row[column] = reference.floor.get(metric, math.nan)
    return row


def logits_columns(info: BackboneInfo, fake_features: np.ndarray,
                   fake_logits: np.ndarray | None, labels: np.ndarray | None,
                   reference: RealReference) -> dict[str, float]:
    """The columns a backbone's logits feed, by what they are (see BackboneInfo.logits)."""
    columns = info.columns
    if info.logits == LOGITS_IMAGENET:
        score = (logits_to_inception_score(fake_logits, min(IS_SPLITS, len(fake_logits)))[0]
                 if fake_logits is not None else math.nan)  # weights without a top: no logits
        return {columns.inception_score: score}
    if info.logits == LOGITS_DATASET and labels is not None and fake_logits is not None:
        accuracy = float((np.argmax(fake_logits, axis=1) == labels).mean())
        return {columns.class_accuracy: accuracy,
                columns.intra_class_fd: intra_class_fd(fake_features, labels,
                                                       reference.features, reference.labels)}
    return {}


def intra_class_fd(fake_features: np.ndarray, fake_labels: np.ndarray,
                   real_features: np.ndarray, real_labels: np.ndarray | None) -> float:
    """Mean over classes (with >= 2 fake and real samples) of FD(fake_c, real_c)."""
    if real_labels is None:
        return math.nan
    distances = []
    for c in np.unique(fake_labels):
        fake_c, real_c = fake_features[fake_labels == c], real_features[real_labels == c]
        if len(fake_c) >= 2 and len(real_c) >= 2:
            ref = prepare_reference(features_to_stats(real_c))
            distances.append(stats_to_fd(features_to_stats(fake_c), ref))
    return float(np.mean(distances)) if distances else math.nan


def vae_columns(model, x_uint8: np.ndarray, labels: np.ndarray | None, batch_size: int,
                seed: tuple[int, int]) -> dict[str, float]:
    """test_elbo and test_recon_error on real images (see the module docstring).

    The ELBO's reparameterisation noise comes from the model's own seed
    generator, set here from (trial seed, epoch) and restored afterwards, so the
    number is repeatable and training continues exactly as without evaluation.
    """
    from keras import ops

    from suite.models.conditioning import condition_image, one_hot_labels

    saved = np.asarray(model.noise_seed.state.value).copy()
    model.noise_seed.state.assign(np.asarray(seed, dtype=saved.dtype).reshape(saved.shape))
    elbo_sum, sq_err_sum = 0.0, 0.0
    try:
        for start in range(0, len(x_uint8), batch_size):
            images = x_uint8[start:start + batch_size].astype(np.float32) / 255.0
            batch_labels = None if labels is None else labels[start:start + batch_size]
            recon, kl = model.negative_elbo_terms(images, batch_labels, training=False)
            elbo_sum -= float(np.sum(np.asarray(recon) + np.asarray(kl)))
            one_hot = (None if batch_labels is None
                       else one_hot_labels(batch_labels, model.num_classes))
            stats = model.encoder(condition_image(images, one_hot), training=False)
            mean = ops.split(stats, 2, axis=-1)[0]
            decoded = np.asarray(model.generate(mean, batch_labels))
            sq_err_sum += float(np.sum((decoded - images) ** 2))
    finally:
        model.noise_seed.state.assign(saved)
    n_pixels = x_uint8[0].size
    return {schema.TEST_ELBO: elbo_sum / len(x_uint8),
            schema.TEST_RECON_ERROR: sq_err_sum / (len(x_uint8) * n_pixels)}
