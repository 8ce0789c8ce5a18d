"""Two small numpy backbones for the backbone-protocol tests, declared as any backbone is.

They are NOT registered on import (the session's registry stays the shipped
one); a test registers them in its own interpreter. Both are real feature
extractors, just cheap ones:

- `toy_centroids`: 4x4 mean-pooled pixels; logits are minus the squared
  distance to each class's mean on the training split (a nearest-centroid
  classifier of the dataset's own classes), filling the domain columns;
- `toy_projection`: a seeded random projection of the pooled pixels to 32
  features and 10 generic classes (Inception-style logits), built from the
  weights option `seed:N`, filling the Inception columns.
"""

from __future__ import annotations

import numpy as np

from suite.common.errors import GenbenchError
from suite.metrics.backbones.base import (
    LOGITS_DATASET,
    LOGITS_IMAGENET,
    BackboneColumns,
    BackboneInfo,
    FeatureExtractor,
)
from suite.metrics.cache import arrays_to_hash
from suite.store import schema

POOL = 4


def pool_pixels(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> (N, H/4 * W/4 * C) mean-pooled pixels."""
    x = np.asarray(images, dtype=np.float64)
    n, h, w, c = x.shape
    h4, w4 = h // POOL, w // POOL
    pooled = x[:, :h4 * POOL, :w4 * POOL].reshape(n, h4, POOL, w4, POOL, c).mean(axis=(2, 4))
    return pooled.reshape(n, -1)


class CentroidExtractor(FeatureExtractor):
    def __init__(self, data) -> None:
        self.info = CENTROIDS
        features = pool_pixels(data.x_train.astype(np.float32) / 255.0)
        self.centroids = np.stack([features[data.y_train == c].mean(axis=0)
                                   for c in range(data.num_classes)])
        self.weights_id = f"centroids-{arrays_to_hash(self.centroids)[:12]}"
        self.feature_dim, self.has_logits = features.shape[1], True

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        features = pool_pixels(images)
        logits = -((features[:, None, :] - self.centroids[None]) ** 2).sum(axis=-1)
        return features.astype(np.float32), logits


def parse_seed(option: str | None) -> int:
    if not option or not option.startswith("seed:") or not option[5:].isdigit():
        raise GenbenchError(f"toy_projection needs weights `seed:N`; got {option!r}. "
                            "Fix: pass --inception-weights seed:0")
    return int(option[5:])


def check_projection_weights(option: str | None) -> None:
    parse_seed(option)


class ProjectionExtractor(FeatureExtractor):
    def __init__(self, option: str | None) -> None:
        self.info = PROJECTION
        rng = np.random.default_rng(parse_seed(option))
        self.features_matrix = rng.standard_normal((49, 32))
        self.logits_matrix = rng.standard_normal((32, 10))
        self.weights_id, self.feature_dim, self.has_logits = str(option), 32, True

    def images_to_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        pooled = pool_pixels(images)[:, :49]
        features = np.tanh(pooled @ self.features_matrix)
        return features.astype(np.float32), features @ self.logits_matrix


CENTROIDS = BackboneInfo(
    name="toy_centroids",
    build=lambda data, weights: CentroidExtractor(data),
    columns=BackboneColumns(
        fd=schema.FD_DOMAIN, kid=schema.KID_DOMAIN, kid_std=schema.KID_DOMAIN_STD,
        precision=schema.PRECISION_DOMAIN, recall=schema.RECALL_DOMAIN,
        weights_id=schema.DOMAIN_WEIGHTS_ID, class_accuracy=schema.CLASS_ACCURACY,
        intra_class_fd=schema.INTRA_CLASS_FD),
    logits=LOGITS_DATASET, needs_labels=True, per_dataset=True, takes_weights=False,
    resize_method="mean-pool 4x4", protocol="pooled pixels; nearest training-class centroid",
    needs_labels_reason="class centroids of the labelled training split",
)

PROJECTION = BackboneInfo(
    name="toy_projection",
    build=lambda data, weights: ProjectionExtractor(weights),
    columns=BackboneColumns(
        fd=schema.FID_INCEPTION, kid=schema.KID_INCEPTION, kid_std=schema.KID_INCEPTION_STD,
        precision=schema.PRECISION_INCEPTION, recall=schema.RECALL_INCEPTION,
        weights_id=schema.INCEPTION_WEIGHTS_ID, inception_score=schema.INCEPTION_SCORE),
    logits=LOGITS_IMAGENET, needs_labels=False, per_dataset=False, takes_weights=True,
    check_weights=check_projection_weights, resize_method="mean-pool 4x4, first 49 values",
    protocol="seeded random projection of pooled pixels; 10 generic classes",
)
