"""Evaluation split over ranks: each rank's share of the samples, and the float64 sums
from which FD and FD_inf follow exactly as from all the features at once.

The scheme is NVlabs EDM2's (`calculate_metrics.py`): every rank generates and
embeds its share, accumulates the sum of its features and of their outer
products in float64, one all-reduce adds the ranks' sums, and the mean and
covariance come from the totals. Two choices keep results independent of the
number of ranks:

- shares are contiguous ranges of the global sample index (`shard_range`), so
  the shares in rank order are exactly the one-rank sample set, in its order;
- FD_inf's folds (subsets of one seeded permutation, suite/metrics/fid.py) are
  unions of a few "atoms": runs of the permutation between consecutive fold
  edges of every fold count. Sums are kept per atom, so one pass over a rank's
  features (the cost of one covariance) gives every fold's statistics.

Features are shifted by a point every rank knows before summing (the real
reference's mean): the covariance is shift-invariant, and sums of centred-ish
values do not lose digits to cancellation, as raw sums of all-positive
post-ReLU features would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suite.metrics.fid import (
    FD_INF_POINTS,
    GaussianStats,
    PreparedReference,
    fd_curve_to_fd_inf,
    fd_inf_folds,
    stats_to_fd,
)


def shard_range(n: int, size: int, rank: int) -> range:
    """Rank `rank`'s global sample indices: the contiguous [r n / size, (r + 1) n / size)."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} outside 0..{size - 1}")
    return range(rank * n // size, (rank + 1) * n // size)


@dataclass(frozen=True)
class FoldPlan:
    """FD_inf's folds as atoms: `order` is the seeded permutation of the n samples, atom a
    holds order[edges[a]:edges[a + 1]], and fold j of k folds is atoms folds[k][j]."""

    n: int
    order: np.ndarray
    edges: np.ndarray
    folds: dict[int, list[range]]


def plan_folds(n: int, seed: int, points: int = FD_INF_POINTS) -> FoldPlan:
    """The atoms of every fold count k = points..1 (fold edges as features_to_fd_inf's)."""
    per_k = {k: np.round(np.linspace(0, n, k + 1)).astype(int) for k in fd_inf_folds(n, points)}
    edges = np.unique(np.concatenate(list(per_k.values())))
    folds = {k: [range(int(np.searchsorted(edges, a)), int(np.searchsorted(edges, b)))
                 for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
             for k, cuts in per_k.items()}
    return FoldPlan(n, np.random.default_rng(seed).permutation(n), edges, folds)


@dataclass(frozen=True, eq=False)
class AtomSums:
    """Per atom: sample count, float64 sum of (features - shift), and of their outer products."""

    counts: np.ndarray  # (atoms,)
    sums: np.ndarray  # (atoms, d)
    outer: np.ndarray  # (atoms, d, d)
    shift: np.ndarray  # (d,)

    def arrays(self) -> list[np.ndarray]:
        """What an all-reduce adds up (the shift is the same on every rank)."""
        return [self.counts, self.sums, self.outer]


def features_to_atom_sums(features: np.ndarray, indices: range, plan: FoldPlan,
                          shift: np.ndarray) -> AtomSums:
    """The sums of one rank's features, whose global sample indices are `indices`."""
    x = np.asarray(features, dtype=np.float64) - np.asarray(shift, dtype=np.float64)
    position = np.empty(plan.n, dtype=np.int64)
    position[plan.order] = np.arange(plan.n)
    atom = np.searchsorted(plan.edges, position[np.asarray(indices, dtype=np.int64)],
                           side="right") - 1
    n_atoms, d = len(plan.edges) - 1, x.shape[1]
    counts = np.zeros(n_atoms, dtype=np.float64)
    sums = np.zeros((n_atoms, d), dtype=np.float64)
    outer = np.zeros((n_atoms, d, d), dtype=np.float64)
    for a in np.unique(atom):
        part = x[atom == a]
        counts[a], sums[a], outer[a] = len(part), part.sum(axis=0), part.T @ part
    return AtomSums(counts, sums, outer, np.asarray(shift, dtype=np.float64))


def sums_to_stats(count: float, total: np.ndarray, outer: np.ndarray,
                  shift: np.ndarray) -> GaussianStats:
    """Mean and unbiased covariance (ddof=1) from the sums of n shifted samples."""
    n = int(round(count))
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance; have {n}")
    centred_mean = total / n
    sigma = (outer - n * np.outer(centred_mean, centred_mean)) / (n - 1)
    return GaussianStats(mu=centred_mean + shift, sigma=(sigma + sigma.T) / 2, n=n)


def atom_sums_to_fd(sums: AtomSums, plan: FoldPlan,
                    reference: PreparedReference) -> tuple[float, float]:
    """(FD, FD_inf) of all the samples, from the all-reduced atom sums."""

    def fd_of(atoms: range) -> float:
        picked = slice(atoms.start, atoms.stop)
        stats = sums_to_stats(sums.counts[picked].sum(), sums.sums[picked].sum(axis=0),
                              sums.outer[picked].sum(axis=0), sums.shift)
        return stats_to_fd(stats, reference)

    fd = fd_of(range(len(plan.edges) - 1))
    sizes, values = [], []
    for k, folds in plan.folds.items():
        values.append(fd if k == 1 else float(np.mean([fd_of(atoms) for atoms in folds])))
        sizes.append(plan.n / k)
    return fd, fd_curve_to_fd_inf(tuple(sizes), tuple(values)).fd_inf
