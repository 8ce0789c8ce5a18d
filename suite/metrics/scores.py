"""Distribution scores of features against a real reference, and their noise floor.

`reference_to_scores` is what every backbone's columns hold: FD, KID (mean,
std), precision, recall, density, coverage, and FD_inf, of one feature set
against a cached RealReference. `features_to_floor` runs the very same scores
between two disjoint real subsets of equal size: the value a perfect generator
would get at that n (the "real vs real" floor). A model whose FD is within its
floor cannot be told from real data by that backbone at that sample size.

The floor's subsets come from a fixed permutation of the eval split
(`plan_floor`), so a split stored in class order still gives two alike halves.
Their size is n_floor = min(n_real, len(eval split) // 2): the evaluation's own
n when the split holds twice that, else half the split; a smaller n makes FD's
floor higher (its bias grows as 1/n), so the floor is then a conservative one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suite.metrics.cache import RealReference, features_to_reference
from suite.metrics.fid import features_to_fd_inf, features_to_stats, stats_to_fd
from suite.metrics.kid import features_to_kid
from suite.metrics.precision_recall import features_to_manifold_scores

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 0
PR_NEIGHBOURS = 3  # k of the k-NN balls behind precision, recall, density and coverage
FD_INF_SEED = 0  # the permutation whose folds are FD_inf's subsets
FLOOR_SEED = 0  # the permutation of the eval split that the floor's subsets come from
FLOOR_METRICS: tuple[str, ...] = ("fd", "kid", "precision", "recall", "density", "coverage")
# Every setting behind the cached radii and floor: part of the reference cache key.
SCORES_PROTOCOL = (f"knn k={PR_NEIGHBOURS}; kid {KID_SUBSETS} subsets <= {KID_SUBSET_SIZE} "
                   f"seed {KID_SEED}; floor: 2 disjoint subsets, permutation seed {FLOOR_SEED}")


def kid_subset_size(n_real: int, n_fake: int) -> int:
    """At most 1000 (the KID paper's), and at most half the smaller set so subsets differ."""
    return max(2, min(KID_SUBSET_SIZE, min(n_real, n_fake) // 2))


def reference_to_scores(reference: RealReference, fake_features: np.ndarray,
                        fd_inf: bool = True) -> dict[str, float]:
    """fd, kid, kid_std, precision, recall, density, coverage (and fd_inf) of the fake
    features against the reference; the cached real k-NN radii are used when present."""
    fd = stats_to_fd(features_to_stats(fake_features), reference.prepared)
    kid, kid_std = features_to_kid(reference.features, fake_features, n_subsets=KID_SUBSETS,
                                   subset_size=kid_subset_size(len(reference.features),
                                                               len(fake_features)),
                                   seed=KID_SEED)
    radii = reference.radii if reference.neighbours == PR_NEIGHBOURS else None
    manifold = features_to_manifold_scores(reference.features, fake_features, k=PR_NEIGHBOURS,
                                           real_radii=radii)
    scores = {"fd": fd, "kid": kid, "kid_std": kid_std, "precision": manifold.precision,
              "recall": manifold.recall, "density": manifold.density,
              "coverage": manifold.coverage}
    if fd_inf:
        scores["fd_inf"] = features_to_fd_inf(fake_features, reference.prepared,
                                              seed=FD_INF_SEED, fd_at_n=fd).fd_inf
    return scores


@dataclass(frozen=True)
class FloorPlan:
    """Which eval-split images the floor compares: two disjoint index sets of n_floor."""

    n_floor: int
    first: np.ndarray
    second: np.ndarray

    @property
    def indices(self) -> np.ndarray:
        return np.concatenate([self.first, self.second])


def plan_floor(n_eval: int, n_real: int) -> FloorPlan:
    """n_floor = min(n_real, n_eval // 2) images each, from a fixed permutation."""
    n_floor = max(0, min(n_real, n_eval // 2))
    order = np.random.default_rng(FLOOR_SEED).permutation(n_eval)
    return FloorPlan(n_floor, order[:n_floor], order[n_floor:2 * n_floor])


def features_to_floor(first: np.ndarray, second: np.ndarray) -> dict[str, float]:
    """The floored scores of one real subset (as the fake side) against the other (as the
    reference); NaN when the subsets are too small for k-NN balls."""
    if min(len(first), len(second)) <= PR_NEIGHBOURS:
        return dict.fromkeys(FLOOR_METRICS, math.nan)
    reference = features_to_reference(first, None, neighbours=PR_NEIGHBOURS)
    scores = reference_to_scores(reference, second, fd_inf=False)
    return {metric: scores[metric] for metric in FLOOR_METRICS}
