"""Sample-quality metrics: pure numpy/scipy maths over features, logits and images.

Backbones that turn images into features live apart (they need TensorFlow);
these modules take arrays, so they run and test anywhere in seconds.
"""

from suite.metrics.fid import (
    FdExtrapolation,
    GaussianStats,
    PreparedReference,
    StatsAccumulator,
    features_to_fd_inf,
    features_to_stats,
    frechet_distance,
    prepare_reference,
    stats_to_fd,
)
from suite.metrics.inception_score import logits_to_inception_score, probs_to_inception_score
from suite.metrics.kid import features_to_kid
from suite.metrics.precision_recall import (
    ManifoldScores,
    features_to_density_coverage,
    features_to_manifold_scores,
    features_to_precision_recall,
)
from suite.metrics.spectral import checkerboard_score, images_to_spectrum, spectral_distance

__all__ = [
    "FdExtrapolation",
    "GaussianStats",
    "ManifoldScores",
    "PreparedReference",
    "StatsAccumulator",
    "checkerboard_score",
    "features_to_density_coverage",
    "features_to_fd_inf",
    "features_to_kid",
    "features_to_manifold_scores",
    "features_to_precision_recall",
    "features_to_stats",
    "frechet_distance",
    "images_to_spectrum",
    "logits_to_inception_score",
    "prepare_reference",
    "probs_to_inception_score",
    "spectral_distance",
    "stats_to_fd",
]
