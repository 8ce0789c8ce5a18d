"""Tests of the pure-numpy metric maths: FD, KID, precision/recall, IS, spectra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.spatial.distance
import scipy.special

from suite.metrics.fid import (
    GaussianStats,
    StatsAccumulator,
    features_to_stats,
    frechet_distance,
    frechet_distance_sqrtm,
    prepare_reference,
    stats_to_fd,
)
from suite.metrics.inception_score import logits_to_inception_score, probs_to_inception_score
from suite.metrics.kid import features_to_kid, features_to_polynomial_kernel, kernels_to_mmd2
from suite.metrics.precision_recall import features_to_knn_radii, features_to_precision_recall
from suite.metrics.spectral import (
    checkerboard_score,
    images_to_power,
    images_to_spectrum,
    spectral_distance,
)


def make_features(
    rng: np.random.Generator, n: int, d: int, shift: float = 0.0, mixing: np.ndarray | None = None
) -> np.ndarray:
    """Inception-like features: correlated, decaying spectrum, post-ReLU, mean ~0.3."""
    if mixing is None:
        mixing = rng.standard_normal((d, d)) * (np.arange(1, d + 1) ** -0.5)[:, None]
    z = rng.standard_normal((n, d)) @ mixing
    return np.maximum(0.25 * z + 0.2 + shift, 0.0)


def make_mixing(rng: np.random.Generator, d: int) -> np.ndarray:
    return rng.standard_normal((d, d)) * (np.arange(1, d + 1) ** -0.5)[:, None]


# ---------------------------------------------------------------- Frechet distance


def test_fd_of_set_with_itself_is_zero() -> None:
    rng = np.random.default_rng(0)
    stats = features_to_stats(make_features(rng, 400, 64))
    scale = np.trace(stats.sigma)
    assert abs(frechet_distance(stats.mu, stats.sigma, stats.mu, stats.sigma)) < 1e-9 * scale
    assert abs(stats_to_fd(stats, prepare_reference(stats))) < 1e-9 * scale


def test_fd_of_differing_sets_is_positive_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    mixing = make_mixing(rng, 32)
    a = features_to_stats(make_features(rng, 500, 32, 0.0, mixing))
    b = features_to_stats(make_features(rng, 500, 32, 0.1, mixing))
    ab = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    ba = frechet_distance(b.mu, b.sigma, a.mu, a.sigma)
    assert ab > 0.1
    assert ab == pytest.approx(ba, rel=1e-10)


def test_fd_matches_closed_form_for_commuting_covariances() -> None:
    # For S1 = Q D1 Q^T, S2 = Q D2 Q^T: FD = |dmu|^2 + sum (sqrt(d1) - sqrt(d2))^2.
    rng = np.random.default_rng(2)
    d = 50
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    d1, d2 = rng.uniform(0.01, 3.0, d), rng.uniform(0.01, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, 1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-10)


def test_fd_handles_singular_covariance_in_closed_form() -> None:
    # A zero-variance direction in one Gaussian: its sqrt is 0, not NaN.
    d1 = np.array([1.0, 4.0, 0.0, 0.0])
    d2 = np.array([4.0, 1.0, 9.0, 0.0])
    expected = 1.0 + 1.0 + 9.0
    assert frechet_distance(np.zeros(4), np.diag(d1), np.zeros(4), np.diag(d2)) == pytest.approx(
        expected, rel=1e-12
    )


@pytest.mark.parametrize(("n", "d"), [(600, 64), (200, 128)])
def test_fd_agrees_with_sqrtm_on_small_dims(n: int, d: int) -> None:
    rng = np.random.default_rng(3)
    mixing = make_mixing(rng, d)
    a = features_to_stats(make_features(rng, n, d, 0.0, mixing))
    b = features_to_stats(make_features(rng, n, d, 0.05, mixing))
    fast = stats_to_fd(b, prepare_reference(a))
    assert fast == pytest.approx(frechet_distance_sqrtm(a.mu, a.sigma, b.mu, b.sigma), rel=1e-6)


def test_fd_agrees_with_sqrtm_on_rank_deficient_stats() -> None:
    # Fewer samples than dimensions: both covariances singular, the sqrtm of the
    # product is ill-conditioned, so agreement is looser than full rank.
    rng = np.random.default_rng(4)
    d = 96
    mixing = make_mixing(rng, d)
    a = features_to_stats(make_features(rng, 60, d, 0.0, mixing))
    b = features_to_stats(make_features(rng, 60, d, 0.05, mixing))
    fast = stats_to_fd(b, prepare_reference(a))
    assert fast == pytest.approx(frechet_distance_sqrtm(a.mu, a.sigma, b.mu, b.sigma), rel=1e-5)


def test_fd_agrees_with_sqrtm_at_2048d() -> None:
    # The protocol's real size: 2048-d Inception pool features, 3000 samples.
    rng = np.random.default_rng(5)
    d = 2048
    mixing = make_mixing(rng, d)
    real = features_to_stats(make_features(rng, 3000, d, 0.0, mixing))
    fake = features_to_stats(make_features(rng, 3000, d, 0.02, mixing))
    expected = frechet_distance_sqrtm(real.mu, real.sigma, fake.mu, fake.sigma)
    assert stats_to_fd(fake, prepare_reference(real)) == pytest.approx(expected, rel=1e-6)


def test_stats_invariant_to_sample_order() -> None:
    rng = np.random.default_rng(6)
    x = make_features(rng, 300, 20)
    a, b = features_to_stats(x), features_to_stats(x[rng.permutation(300)])
    np.testing.assert_allclose(a.mu, b.mu, rtol=1e-12)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-10, atol=1e-14)
    ref = features_to_stats(make_features(rng, 300, 20))
    assert stats_to_fd(a, prepare_reference(ref)) == pytest.approx(
        stats_to_fd(b, prepare_reference(ref)), rel=1e-10
    )


def test_accumulator_equals_one_shot_stats() -> None:
    rng = np.random.default_rng(7)
    x = make_features(rng, 257, 16)
    acc = StatsAccumulator(16)
    for start, stop in [(0, 1), (1, 100), (100, 100), (100, 163), (163, 257)]:
        acc.update(x[start:stop])
    streamed, oneshot = acc.to_stats(), features_to_stats(x)
    assert streamed.n == oneshot.n == 257
    np.testing.assert_allclose(streamed.mu, oneshot.mu, rtol=1e-12)
    np.testing.assert_allclose(streamed.sigma, oneshot.sigma, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(oneshot.sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-14)


def test_accumulator_keeps_precision_with_large_mean() -> None:
    # Summing x x^T would cancel catastrophically here (mean 1e6, spread 1e-2).
    rng = np.random.default_rng(8)
    x = 1e6 + 1e-2 * rng.normal(size=(1000, 4))
    acc = StatsAccumulator(4)
    for batch in np.array_split(x, 9):
        acc.update(batch)
    np.testing.assert_allclose(acc.to_stats().sigma, features_to_stats(x).sigma, rtol=1e-6)


def test_stats_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        features_to_stats(np.ones((1, 5)))
    with pytest.raises(ValueError):
        features_to_stats(np.full((3, 2), np.nan))
    with pytest.raises(ValueError):
        StatsAccumulator(3).to_stats()
    a = GaussianStats(mu=np.zeros(3), sigma=np.eye(3), n=10)
    b = GaussianStats(mu=np.zeros(4), sigma=np.eye(4), n=10)
    with pytest.raises(ValueError):
        stats_to_fd(b, prepare_reference(a))


# ---------------------------------------------------------------- KID


def test_mmd2_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / 3 + 1) ** 3

    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    kernels = [features_to_polynomial_kernel(p, q) for p, q in [(x, x), (x, y), (y, y)]]
    assert kernels_to_mmd2(*kernels) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_same_distribution_is_zero_within_std() -> None:
    rng = np.random.default_rng(10)
    mixing = make_mixing(rng, 32)
    real, fake = (make_features(rng, 2000, 32, 0.0, mixing) for _ in range(2))
    # Subsets much smaller than the samples, so the subset mean is far tighter than std.
    mean, std = features_to_kid(real, fake, n_subsets=50, subset_size=200)
    assert std > 0
    assert abs(mean) < std


def test_kid_shifted_distribution_is_clearly_positive() -> None:
    rng = np.random.default_rng(11)
    mixing = make_mixing(rng, 32)
    real = make_features(rng, 600, 32, 0.0, mixing)
    fake = make_features(rng, 600, 32, 0.2, mixing)
    mean, std = features_to_kid(real, fake, n_subsets=50, subset_size=300)
    assert mean > 10 * std > 0


def test_kid_is_seeded_and_clips_subset_size() -> None:
    rng = np.random.default_rng(12)
    real, fake = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 0.2
    first = features_to_kid(real, fake, n_subsets=5)  # subset_size 1000 -> 30
    assert first == features_to_kid(real, fake, n_subsets=5, seed=0)
    assert first != features_to_kid(real, fake, n_subsets=5, seed=1)
    with pytest.raises(ValueError):
        features_to_kid(real, fake[:, :4])


# ---------------------------------------------------------------- precision / recall


def test_knn_radii_match_brute_force() -> None:
    rng = np.random.default_rng(13)
    x = rng.normal(size=(50, 5))
    dist = scipy.spatial.distance.cdist(x, x, "sqeuclidean")
    expected = np.sort(dist, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(features_to_knn_radii(x, k=3, batch_size=7), expected, rtol=1e-9)


def test_precision_recall_identical_clouds_are_one() -> None:
    rng = np.random.default_rng(14)
    x = rng.normal(size=(500, 8))
    assert features_to_precision_recall(x, x.copy()) == (1.0, 1.0)
    precision, recall = features_to_precision_recall(x, rng.normal(size=(500, 8)))
    assert precision > 0.6 and recall > 0.6  # same distribution, different samples


def test_precision_recall_disjoint_clouds_are_zero() -> None:
    rng = np.random.default_rng(15)
    real = rng.normal(size=(400, 8))
    fake = rng.normal(size=(400, 8)) + 20.0
    assert features_to_precision_recall(real, fake) == (0.0, 0.0)


def test_precision_recall_mode_dropping_gives_high_precision_low_recall() -> None:
    # Fake covers only a small central region of the real cloud.
    rng = np.random.default_rng(16)
    real = rng.uniform(-1, 1, size=(1000, 2))
    fake = rng.uniform(-0.2, 0.2, size=(1000, 2))
    precision, recall = features_to_precision_recall(real, fake)
    assert precision > 0.95
    assert recall < 0.1


def test_precision_recall_independent_of_batch_size() -> None:
    rng = np.random.default_rng(17)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(250, 6)) * 1.3 + 0.3
    assert features_to_precision_recall(real, fake, batch_size=1024) == (
        features_to_precision_recall(real, fake, batch_size=17)
    )


# ---------------------------------------------------------------- Inception Score


def test_inception_score_of_uniform_predictions_is_one() -> None:
    mean, std = logits_to_inception_score(np.zeros((100, 10)))
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_diverse_predictions_is_n_classes() -> None:
    labels = np.arange(1000) % 10  # every split holds each class equally often
    logits = 100.0 * np.eye(10)[labels]
    mean, std = logits_to_inception_score(logits, n_splits=10)
    assert mean == pytest.approx(10.0, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)
    # Confident but all one class: no diversity, score 1.
    assert logits_to_inception_score(100.0 * np.eye(10)[np.zeros(1000, int)])[0] == (
        pytest.approx(1.0, rel=1e-9)
    )


def test_inception_score_logits_and_probs_agree_and_are_stable() -> None:
    rng = np.random.default_rng(18)
    logits = 3.0 * rng.normal(size=(500, 20))
    from_logits = logits_to_inception_score(logits, n_splits=5)
    from_probs = probs_to_inception_score(scipy.special.softmax(logits, axis=1), n_splits=5)
    assert from_logits == pytest.approx(from_probs, rel=1e-9)
    # Softmax ignores a constant offset; huge logits must not overflow to NaN.
    shifted = logits_to_inception_score(logits + 1e4, n_splits=5)
    assert shifted == pytest.approx(from_logits, rel=1e-6)
    huge = logits_to_inception_score(1e4 * logits, n_splits=5)
    assert np.isfinite(huge).all() and 1.0 <= huge[0] <= 20.0
    with pytest.raises(ValueError):
        probs_to_inception_score(logits)


# ---------------------------------------------------------------- spectra


def make_smooth_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    """Blurred noise with a faint sensor-noise floor, in [0, 1], [N, H, W, 3]."""
    noise = rng.normal(size=(n, size, size, 3))
    smooth = scipy.ndimage.gaussian_filter(noise, sigma=(0, 2.5, 2.5, 0), mode="wrap")
    smooth = 0.5 + 0.25 * smooth / smooth.std()
    return np.clip(smooth + 0.01 * rng.normal(size=smooth.shape), 0.0, 1.0)


def add_checkerboard(images: np.ndarray, amplitude: float) -> np.ndarray:
    """Add the 2-pixel alternating +-amplitude pattern of strided transposed convs."""
    h, w = images.shape[1:3]
    pattern = amplitude * (-1.0) ** np.add.outer(np.arange(h), np.arange(w))
    return np.clip(images + pattern[None, :, :, None], 0.0, 1.0)


@pytest.fixture(scope="module")
def image_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(19)
    clean_a, clean_b = make_smooth_images(rng, 64), make_smooth_images(rng, 64)
    return {"a": clean_a, "b": clean_b, "checkered": add_checkerboard(clean_a, 0.05)}


def test_power_obeys_parseval_and_spectrum_covers_corners() -> None:
    rng = np.random.default_rng(20)
    images = rng.uniform(size=(5, 16, 16, 1))
    centered = images[..., 0] - images[..., 0].mean(axis=(1, 2), keepdims=True)
    assert images_to_power(images).mean() == pytest.approx((centered**2).mean(), rel=1e-12)
    spectrum = images_to_spectrum(images)
    assert spectrum.shape == (int(np.rint(np.hypot(8, 8))) + 1,)
    assert spectrum[0] == pytest.approx(0.0, abs=1e-20)  # mean removed


def test_checkerboard_score_flags_planted_checkerboard(image_sets: dict) -> None:
    clean = checkerboard_score(image_sets["a"], image_sets["b"])
    checkered = checkerboard_score(image_sets["checkered"], image_sets["b"])
    assert 0.5 < clean < 2.0
    assert checkered > 100.0
    assert checkered > 100.0 * clean


def test_spectral_distance_ranks_checkerboard_above_clean(image_sets: dict) -> None:
    clean = spectral_distance(image_sets["a"], image_sets["b"])
    checkered = spectral_distance(image_sets["checkered"], image_sets["b"])
    assert spectral_distance(image_sets["a"], image_sets["a"]) == 0.0
    assert clean < 0.1
    assert checkered > 3 * clean


def test_spectral_inputs_are_validated() -> None:
    with pytest.raises(ValueError):
        checkerboard_score(np.zeros((2, 15, 15, 1)), np.zeros((2, 15, 15, 1)))
    with pytest.raises(ValueError):
        images_to_spectrum(np.zeros((15, 15)))
