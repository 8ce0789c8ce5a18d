"""Evaluation split over ranks: shares, atom sums and KID subsets equal one process's."""

from __future__ import annotations

import numpy as np
import pytest

from suite.metrics.fid import features_to_fd_inf, features_to_stats, prepare_reference, stats_to_fd
from suite.metrics.kid import features_to_kid, features_to_subset_mmds
from suite.metrics.shards import (
    AtomSums,
    atom_sums_to_fd,
    features_to_atom_sums,
    plan_folds,
    shard_range,
    sums_to_stats,
)


@pytest.mark.parametrize("n", [10, 997, 1000, 10_001])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 8])
def test_shares_are_exactly_the_one_rank_sample_set(n: int, size: int) -> None:
    shares = [shard_range(n, size, r) for r in range(size)]
    assert [i for share in shares for i in share] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def features(n: int, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)  # all-positive, mean far from 0: cancellation-prone
    return (np.abs(rng.standard_normal((n, d)) @ rng.standard_normal((d, d))) + 50).astype("f4")


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_summed_shards_give_the_single_pass_mean_cov_fd_and_fd_inf(size: int) -> None:
    n = 1003
    fake, real = features(n), features(800, seed=1)
    reference = prepare_reference(features_to_stats(real))
    plan = plan_folds(n, seed=0)
    shift = features_to_stats(real).mu
    parts = [features_to_atom_sums(fake[s.start:s.stop], s, plan, shift)
             for s in (shard_range(n, size, r) for r in range(size))]
    total = AtomSums(*(sum(p.arrays()[i] for p in parts) for i in range(3)), shift)
    stats = sums_to_stats(total.counts.sum(), total.sums.sum(0), total.outer.sum(0), shift)
    single = features_to_stats(fake)
    np.testing.assert_allclose(stats.mu, single.mu, rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, single.sigma, rtol=1e-9, atol=1e-12)
    fd, fd_inf = atom_sums_to_fd(total, plan, reference)
    assert fd == pytest.approx(stats_to_fd(single, reference), rel=1e-9)
    assert fd_inf == pytest.approx(features_to_fd_inf(fake, reference, seed=0).fd_inf, rel=1e-8)


def test_kid_subsets_split_over_ranks_sum_to_the_one_process_kid() -> None:
    real, fake = features(300, seed=2), features(301, seed=3)
    parts = [features_to_subset_mmds(real, fake, 20, 100, 0, (r, 3)) for r in range(3)]
    mmds = sum(parts)
    assert (mean := float(mmds.mean())) == pytest.approx(features_to_kid(real, fake, 20, 100, 0)[0],
                                                          rel=1e-12)
    assert mean != 0 and all(np.count_nonzero(p) in (6, 7) for p in parts)
