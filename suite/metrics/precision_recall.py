"""Improved precision and recall (Kynkaanniemi et al. 2019).

Each sample set defines a manifold: the union of balls around its points whose
radius is the distance to the k-th nearest neighbour in the same set.
Precision = share of fake samples inside the real manifold (fidelity);
recall = share of real samples inside the fake manifold (coverage). Unlike FID
this separates "bad samples" from "missing modes".

Distances are computed in row blocks, so 10k x 10k samples of 2048-d features
need O(batch_size * n) memory, never the full n x n matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from suite.metrics.fid import check_features


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


def features_to_precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 1024
) -> tuple[float, float]:
    """Return (precision, recall) of fake features against real ones, k-NN manifolds.

    One pass over the fake-vs-real distance blocks serves both directions:
    a block row answers "is this fake inside any real ball" (precision), its
    columns accumulate "is this real inside any fake ball" (recall).
    """
    x, y = check_features(real), check_features(fake)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    real_radii = features_to_knn_radii(x, k, batch_size)
    fake_radii = features_to_knn_radii(y, k, batch_size)
    fake_in_real = np.zeros(y.shape[0], dtype=bool)
    real_in_fake = np.zeros(x.shape[0], dtype=bool)
    for rows, d2 in iter_squared_distances(y, x, batch_size):
        fake_in_real[rows] = (d2 <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (d2 <= fake_radii[rows, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())
