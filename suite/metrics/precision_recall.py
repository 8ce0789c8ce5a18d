"""Improved precision and recall (Kynkaanniemi et al. 2019), density and coverage
(Naeem et al. 2020): four scores from one set of k-NN balls.

Each sample set defines a manifold: the union of balls around its points whose
radius is the distance to the k-th nearest neighbour in the same set.
Precision = share of fake samples inside the real manifold (fidelity);
recall = share of real samples inside the fake manifold (diversity). Unlike FID
this separates "bad samples" from "missing modes". Density counts how many real
balls hold each fake sample (divided by k: about 1 for fakes distributed like
the reals, above 1 where they crowd into dense regions); coverage is the share
of real balls that hold at least one fake sample. Both use the real balls only,
so they are robust to outliers among the fakes, where recall is not.

One pass over the fake-vs-real distance blocks serves all four scores (no
second n x n computation); the real radii can be passed in, so a cached
reference never recomputes them. Comparisons follow each metric's authors'
code: precision and recall count a point on a ball's boundary as inside (`<=`,
as NVlabs' code), density and coverage do not (`<`, as clovaai's `prdc`, which
they equal exactly on the same features).

Distances are computed in row blocks, so 10k x 10k samples of 2048-d features
need O(batch_size * n) memory, never the full n x n matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from suite.metrics.fid import check_features


@dataclass(frozen=True)
class ManifoldScores:
    """Precision, recall, density and coverage of fake against real features."""

    precision: float
    recall: float
    density: float
    coverage: float


def iter_squared_distances(
    a: np.ndarray, b: np.ndarray, batch_size: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows, |a[rows] - b|^2) blocks, via |a|^2 + |b|^2 - 2 a.b clipped at 0."""
    b_norms = np.einsum("ij,ij->i", b, b)
    for start in range(0, a.shape[0], batch_size):
        rows = slice(start, min(start + batch_size, a.shape[0]))
        block = a[rows]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + b_norms[None, :] - 2 * block @ b.T
        yield rows, np.maximum(d2, 0.0, out=d2)


def features_to_knn_radii(features: np.ndarray, k: int = 3, batch_size: int = 1024) -> np.ndarray:
    """Squared distance from each sample to its k-th nearest other sample.

    Index k of the partitioned row skips the sample itself (distance 0 at index 0).
    """
    features = check_features(features)
    if not 1 <= k < features.shape[0]:
        raise ValueError(f"need 1 <= k < n_samples ({features.shape[0]}); got k={k}")
    radii = np.empty(features.shape[0], dtype=np.float64)
    for rows, d2 in iter_squared_distances(features, features, batch_size):
        radii[rows] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _checked_pair(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = check_features(real), check_features(fake)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    return x, y


def _checked_radii(radii: np.ndarray | None, x: np.ndarray, k: int,
                   batch_size: int) -> np.ndarray:
    """The real k-NN radii: given (e.g. cached with the reference), or computed now."""
    if radii is None:
        return features_to_knn_radii(x, k, batch_size)
    radii = np.asarray(radii, dtype=np.float64)
    if radii.shape != (x.shape[0],):
        raise ValueError(f"real_radii must have shape ({x.shape[0]},); got {radii.shape}")
    return radii


def features_to_manifold_scores(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 1024,
    real_radii: np.ndarray | None = None,
) -> ManifoldScores:
    """Precision, recall, density and coverage of fake against real features, in one pass.

    A block of fake rows against all reals answers "is this fake inside any
    real ball" (precision) and "in how many" (density); its columns accumulate
    "does this real ball hold a fake" (coverage) and "is this real inside a
    fake ball" (recall). `real_radii`: squared k-NN radii of `real` when known.
    """
    x, y = _checked_pair(real, fake)
    real_radii = _checked_radii(real_radii, x, k, batch_size)
    fake_radii = features_to_knn_radii(y, k, batch_size)
    fake_in_real = np.zeros(y.shape[0], dtype=bool)
    real_in_fake = np.zeros(x.shape[0], dtype=bool)
    real_covered = np.zeros(x.shape[0], dtype=bool)
    inside_count = 0
    for rows, d2 in iter_squared_distances(y, x, batch_size):
        fake_in_real[rows] = (d2 <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (d2 <= fake_radii[rows, None]).any(axis=0)
        strictly = d2 < real_radii[None, :]
        inside_count += int(np.count_nonzero(strictly))
        real_covered |= strictly.any(axis=0)
    return ManifoldScores(precision=float(fake_in_real.mean()), recall=float(real_in_fake.mean()),
                          density=inside_count / (k * y.shape[0]),
                          coverage=float(real_covered.mean()))


def features_to_precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 1024
) -> tuple[float, float]:
    """Return (precision, recall) of fake features against real ones, k-NN manifolds."""
    scores = features_to_manifold_scores(real, fake, k, batch_size)
    return scores.precision, scores.recall


def features_to_density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 1024,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """Return (density, coverage) of fake features against real ones (Naeem et al. 2020).

    Needs the real balls only (no fake radii): one pass over the fake-vs-real
    distance blocks. The default k is precision and recall's, so that one set of
    radii serves all four (the paper suggests k=5; pass it to compare).
    """
    x, y = _checked_pair(real, fake)
    real_radii = _checked_radii(real_radii, x, k, batch_size)
    real_covered = np.zeros(x.shape[0], dtype=bool)
    inside_count = 0
    for _, d2 in iter_squared_distances(y, x, batch_size):
        strictly = d2 < real_radii[None, :]
        inside_count += int(np.count_nonzero(strictly))
        real_covered |= strictly.any(axis=0)
    return inside_count / (k * y.shape[0]), float(real_covered.mean())
