"""Issue 11's qualified sample-quality numbers, without TensorFlow: density and coverage
against clovaai's `prdc`, FD_inf on Gaussians whose bias is known, the real-vs-real
floor, the reference cache that stores both, and the columns a backbone declares."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from suite.metrics import features_to_density_coverage
from suite.metrics.backbones.base import BackboneColumns
from suite.metrics.cache import (
    REFERENCE_FORMAT,
    ReferenceKey,
    features_to_reference,
    load_or_compute_reference,
    load_reference,
    reference_path,
    save_reference,
)
from suite.metrics.fid import (
    GaussianStats,
    fd_curve_to_fd_inf,
    fd_inf_folds,
    features_to_fd_inf,
    features_to_stats,
    prepare_reference,
    stats_to_fd,
)
from suite.metrics.precision_recall import (
    features_to_knn_radii,
    features_to_manifold_scores,
    features_to_precision_recall,
)
from suite.metrics.scores import (
    FLOOR_METRICS,
    PR_NEIGHBOURS,
    features_to_floor,
    plan_floor,
    reference_to_scores,
)
from suite.store import schema

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------- density and coverage


def prdc_cases():
    """Feature sets and k; their prdc 0.2 values are pinned in PRDC_VALUES."""
    rng = np.random.default_rng(101)
    yield "gauss_shift", rng.normal(size=(500, 16)), rng.normal(size=(400, 16)) * 1.2 + 0.3, 3
    rng = np.random.default_rng(102)
    mixing = rng.standard_normal((32, 32)) * (np.arange(1, 33) ** -0.5)[:, None]
    real = np.maximum(0.25 * rng.standard_normal((600, 32)) @ mixing + 0.2, 0.0)
    fake = np.maximum(0.25 * rng.standard_normal((300, 32)) @ mixing + 0.25, 0.0)
    yield "relu_features", real, fake, 5
    rng = np.random.default_rng(103)
    yield "mode_drop", rng.uniform(-1, 1, size=(800, 2)), rng.uniform(-0.2, 0.2, size=(700, 2)), 3
    rng = np.random.default_rng(104)
    real = rng.normal(size=(300, 8))
    fake = np.concatenate([rng.normal(size=(250, 8)), rng.normal(size=(50, 8)) + 6.0])
    yield "outliers", real, fake, 4


# Computed once with clovaai's reference implementation (`pip install prdc`, 0.2, with
# scikit-learn 1.9.1): prdc.compute_prdc(real, fake, nearest_k=k) on the float64 features
# of prdc_cases(). Keys: precision, recall, density, coverage.
PRDC_VALUES = {
    "gauss_shift": (0.4875, 0.956, 0.3433333333333333, 0.458),
    "relu_features": (0.8833333333333333, 0.96, 0.8766666666666668, 0.8133333333333334),
    "mode_drop": (0.9528571428571428, 0.045, 0.9133333333333333, 0.0725),
    "outliers": (0.78, 0.9, 0.9583333333333334, 0.9333333333333333),
}


@pytest.mark.parametrize("case", list(PRDC_VALUES))
def test_density_coverage_equal_the_prdc_package(case: str) -> None:
    real, fake, k = next((r, f, k) for name, r, f, k in prdc_cases() if name == case)
    precision, recall, density, coverage = PRDC_VALUES[case]
    assert features_to_density_coverage(real, fake, k) == pytest.approx((density, coverage),
                                                                        abs=1e-9)
    scores = features_to_manifold_scores(real, fake, k, batch_size=97)
    assert (scores.density, scores.coverage) == pytest.approx((density, coverage), abs=1e-9)
    # Precision and recall too (no point lies exactly on a ball's boundary here).
    assert (scores.precision, scores.recall) == pytest.approx((precision, recall), abs=1e-9)
    assert features_to_precision_recall(real, fake, k) == (scores.precision, scores.recall)


def test_density_coverage_behave_as_the_paper_says() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(1000, 4))
    density, coverage = features_to_density_coverage(real, rng.normal(size=(1000, 4)))
    assert 0.8 < density < 1.2 and 0.8 < coverage < 0.95  # same: 1 - 2^-k expected
    assert features_to_density_coverage(real, rng.normal(size=(500, 4)) + 30.0) == (0.0, 0.0)
    # Mode dropping: fakes in the centre only are faithful (density near 1) but cover
    # few real balls.
    density, coverage = features_to_density_coverage(real, rng.normal(size=(1000, 4)) * 0.2)
    assert density > 0.5 and coverage < 0.3
    # Outlying fakes leave density and coverage of the rest unchanged (unlike recall).
    inliers = rng.normal(size=(900, 4))
    with_outliers = np.concatenate([inliers, rng.normal(size=(100, 4)) + 30.0])
    d_in, c_in = features_to_density_coverage(real, inliers)
    d_out, c_out = features_to_density_coverage(real, with_outliers)
    assert c_out == c_in and d_out == pytest.approx(d_in * 0.9)


def test_given_radii_give_the_same_scores_and_are_checked() -> None:
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(200, 6)) + 0.2
    radii = features_to_knn_radii(real, 3)
    assert features_to_manifold_scores(real, fake, 3, real_radii=radii) == \
        features_to_manifold_scores(real, fake, 3)
    assert features_to_density_coverage(real, fake, 3, real_radii=radii) == \
        features_to_density_coverage(real, fake, 3)
    with pytest.raises(ValueError, match="real_radii"):
        features_to_density_coverage(real, fake, 3, real_radii=radii[:10])
    with pytest.raises(ValueError, match="dimensions differ"):
        features_to_density_coverage(real, fake[:, :5])


# ---------------------------------------------------------------- FD_inf


def test_fd_inf_takes_sizes_n_over_k() -> None:
    assert fd_inf_folds(10_000) == (5, 4, 3, 2, 1)
    assert fd_inf_folds(10) == (5, 4, 3, 2, 1) and fd_inf_folds(4, points=2) == (2, 1)
    with pytest.raises(ValueError):
        fd_inf_folds(9)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 4))
    fit = features_to_fd_inf(x, prepare_reference(features_to_stats(rng.normal(size=(500, 4)))))
    assert fit.sizes == (200.0, 250.0, 1000 / 3, 500.0, 1000.0)


def test_fd_inf_fit_recovers_an_exact_line() -> None:
    sizes = (100, 200, 400, 800)
    fit = fd_curve_to_fd_inf(sizes, tuple(3.0 + 50.0 / n for n in sizes))
    assert fit.fd_inf == pytest.approx(3.0, abs=1e-12) and fit.slope == pytest.approx(50.0)


@pytest.mark.parametrize("d,n", [(16, 1000), (32, 2000)])
def test_fd_inf_removes_the_known_sample_size_bias(d: int, n: int) -> None:
    """Samples of N(delta, I) against the exact N(0, I): FD's expected value is
    |delta|^2 + d/n (mean) + d(d+1)/(4n) (covariance, to first order); FD_inf's is |delta|^2."""
    delta = np.zeros(d)
    delta[:4] = 0.5
    true_fd = float(delta @ delta)
    ref = prepare_reference(GaussianStats(mu=np.zeros(d), sigma=np.eye(d), n=0))
    plain, extrapolated = [], []
    for seed in range(30):
        x = np.random.default_rng(seed).standard_normal((n, d)) + delta
        plain.append(stats_to_fd(features_to_stats(x), ref))
        fit = features_to_fd_inf(x, ref, seed=seed)
        assert fit.sizes[-1] == n and fit.values[-1] == pytest.approx(plain[-1], rel=1e-9)
        # At n/2: the mean FD of the two halves of the seeded permutation.
        halves = np.random.default_rng(seed).permutation(n).reshape(2, -1)
        assert fit.values[-2] == pytest.approx(np.mean(
            [stats_to_fd(features_to_stats(x[h]), ref) for h in halves]), rel=1e-9)
        extrapolated.append(fit.fd_inf)
    bias = np.mean(plain) - true_fd
    known = d / n + d * (d + 1) / (4 * n)
    assert bias == pytest.approx(known, rel=0.15)  # the bias is there, and is c/n
    remaining = np.mean(extrapolated) - true_fd
    assert abs(remaining) < 0.2 * bias  # and FD_inf removes (nearly) all of it
    assert np.mean(extrapolated) < np.mean(plain)
    assert np.std(extrapolated) < 1.5 * np.std(plain)  # about as precise as FD itself


def test_fd_inf_is_seeded_and_reuses_a_known_fd_at_n() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 8))
    ref = prepare_reference(features_to_stats(rng.normal(size=(500, 8))))
    fd = stats_to_fd(features_to_stats(x), ref)
    fit = features_to_fd_inf(x, ref, seed=1)
    reused = features_to_fd_inf(x, ref, seed=1, fd_at_n=fd)
    assert reused.values[:-1] == fit.values[:-1] and reused.values[-1] == fd
    assert reused.fd_inf == pytest.approx(fit.fd_inf, rel=1e-9)
    assert features_to_fd_inf(x, ref, seed=1) == features_to_fd_inf(x, ref, seed=1)
    assert features_to_fd_inf(x, ref, seed=1).fd_inf != features_to_fd_inf(x, ref, seed=2).fd_inf


# ---------------------------------------------------------------- the real-vs-real floor


def test_floor_plan_takes_two_disjoint_halves() -> None:
    plan = plan_floor(2000, 1000)  # a split twice the evaluation's n: the same n
    assert plan.n_floor == 1000 and len(set(plan.first) | set(plan.second)) == 2000
    plan = plan_floor(2000, 2000)  # the whole split is the reference: half of it each
    assert plan.n_floor == 1000 and not set(plan.first) & set(plan.second)
    assert plan_floor(2000, 300).n_floor == 300
    assert (plan_floor(2000, 300).first == plan_floor(2000, 300).first).all()  # fixed
    assert plan_floor(7, 7).n_floor == 3


def test_floor_is_small_for_one_distribution_and_matches_reference_scores() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(800, 8)), rng.normal(size=(800, 8))
    floor = features_to_floor(a, b)
    assert set(floor) == set(FLOOR_METRICS)
    assert 0 < floor["fd"] < 0.2 and abs(floor["kid"]) < 0.01
    assert 0.6 < floor["precision"] < 1 and 0.6 < floor["recall"] < 1
    assert 0.8 < floor["density"] < 1.2 and 0.8 < floor["coverage"] <= 1
    shifted = reference_to_scores(features_to_reference(a, None, PR_NEIGHBOURS), b + 1.0)
    assert shifted["fd"] > 20 * floor["fd"] and shifted["coverage"] < floor["coverage"]
    assert shifted["fd_inf"] == pytest.approx(shifted["fd"], rel=0.05)  # bias << FD here
    assert all(math.isnan(v) for v in features_to_floor(a[:3], b[:3]).values())


# ---------------------------------------------------------------- the reference cache


def test_reference_stores_radii_and_floor(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    rng = np.random.default_rng(9)
    features = rng.normal(size=(200, 5))
    key = ReferenceKey("mnist", "test", "b", "w", 200, "none", "abc", protocol="k=3")
    ref = features_to_reference(features, np.arange(200) % 10, neighbours=3)
    ref = type(ref)(**{**ref.__dict__, "floor": {"fd": 0.5, "kid": 0.001}, "n_floor": 100})
    path = reference_path(key)
    path.parent.mkdir(parents=True)
    save_reference(path, key, ref)
    back = load_reference(path, key)
    assert back is not None and back.n_floor == 100 and back.floor == {"fd": 0.5, "kid": 0.001}
    assert back.neighbours == 3
    np.testing.assert_array_equal(back.radii, features_to_knn_radii(back.features, 3))
    np.testing.assert_array_equal(back.labels, ref.labels)
    # Another protocol is another entry: never read for this one.
    assert load_reference(path, ReferenceKey(*list(key.__dict__.values())[:7], protocol="k=5")) \
        is None
    assert f"f{REFERENCE_FORMAT}" in path.name


def test_hash_takes_empty_arrays() -> None:
    """The floor's images beyond the reference are none when the reference is the whole
    eval split (n_samples >= its size): hashing them must work and still tell shapes apart."""
    from suite.metrics.cache import arrays_to_hash

    empty = np.zeros((0, 28, 28, 1), np.uint8)
    assert arrays_to_hash(empty) == arrays_to_hash(empty.copy())
    assert arrays_to_hash(empty) != arrays_to_hash(np.zeros((0, 32, 32, 3), np.uint8))


def test_reference_cache_of_the_old_format_is_recomputed_not_misread(tmp_path,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    key = ReferenceKey("mnist", "test", "b", "w", 50, "none", "abc")
    path = reference_path(key)
    path.parent.mkdir(parents=True)
    stale = features_to_reference(np.random.default_rng(1).normal(size=(50, 4)), None)
    old_key = json.dumps({**json.loads(key.to_json()), "format": 1}, sort_keys=True)
    np.savez(path, key_json=np.array(old_key), mu=stale.stats.mu, sigma=stale.stats.sigma,
             n=np.array(50), trace_sigma=np.array(1.0), sqrt_factor=stale.prepared.sqrt_factor,
             features=stale.features)
    assert load_reference(path, key) is None
    fresh = np.random.default_rng(2).normal(size=(50, 4))
    ref = load_or_compute_reference(key, lambda: features_to_reference(fresh, None, 3))
    np.testing.assert_allclose(ref.stats.mu, fresh.mean(axis=0))
    assert ref.radii is not None and load_reference(path, key) is not None


# ---------------------------------------------------------------- declared columns


def test_backbone_columns_derive_their_quality_columns_from_the_fd_column() -> None:
    c = BackboneColumns(fd=schema.FD_DOMAIN, kid=schema.KID_DOMAIN,
                        kid_std=schema.KID_DOMAIN_STD, precision=schema.PRECISION_DOMAIN,
                        recall=schema.RECALL_DOMAIN, weights_id=schema.DOMAIN_WEIGHTS_ID)
    assert (c.density, c.coverage, c.fd_inf) == (
        schema.DENSITY_DOMAIN, schema.COVERAGE_DOMAIN, schema.FD_DOMAIN_INF)
    assert c.floors == {"fd": schema.FD_DOMAIN_FLOOR, "kid": schema.KID_DOMAIN_FLOOR,
                        "precision": schema.PRECISION_DOMAIN_FLOOR,
                        "recall": schema.RECALL_DOMAIN_FLOOR,
                        "density": schema.DENSITY_DOMAIN_FLOOR,
                        "coverage": schema.COVERAGE_DOMAIN_FLOOR}
    i = BackboneColumns(fd=schema.FID_INCEPTION, kid=schema.KID_INCEPTION,
                        kid_std=schema.KID_INCEPTION_STD, precision=schema.PRECISION_INCEPTION,
                        recall=schema.RECALL_INCEPTION, weights_id=schema.INCEPTION_WEIGHTS_ID)
    assert (i.fd_inf, i.fd_floor, i.density_floor) == (
        schema.FID_INCEPTION_INF, schema.FID_INCEPTION_FLOOR, schema.DENSITY_INCEPTION_FLOOR)
    assert not set(c.qualified) & set(i.qualified) and len(c.qualified) == 9
    # Declared explicitly: checked against the schema like every other column.
    with pytest.raises(ValueError, match="not in suite/store/schema.py"):
        BackboneColumns(fd=schema.FD_DOMAIN, kid=schema.KID_DOMAIN,
                        kid_std=schema.KID_DOMAIN_STD, precision=schema.PRECISION_DOMAIN,
                        recall=schema.RECALL_DOMAIN, weights_id=schema.DOMAIN_WEIGHTS_ID,
                        fd_floor="fd_domain_floor_typo")


def test_toy_backbones_in_tests_get_the_new_columns() -> None:
    sys.path.insert(0, str(HERE))
    try:
        import _toy_backbones as toy
    finally:
        sys.path.remove(str(HERE))
    assert toy.CENTROIDS.columns.fd_floor == schema.FD_DOMAIN_FLOOR
    assert toy.PROJECTION.columns.fd_inf == schema.FID_INCEPTION_INF


# ---------------------------------------------------------------- eval.cas and the recipe

PINNED_SWEEP = """\
name: t
dataset: mnist
grid:
  epochs: [3, 1]
  model: [dcgan, cvae]
  seed: [0, 1]
fixed: {latent_dim: 8, lr: 2.0e-4, max_train_images: 512, batch_size: 32}
"""
PINNED_IDS = ["784df9647b99", "85a8d3624b53", "f5bdd44c42fa", "58f2f6b4120d"]


def test_eval_cas_is_a_flag_that_leaves_default_trial_ids_alone(write_sweep) -> None:
    from suite.common.errors import SpecError
    from suite.sweep.loader import load_sweep
    from suite.sweep.spec import Trial

    def ids(eval_block: str) -> list[str]:
        sweep = load_sweep(str(write_sweep(PINNED_SWEEP + eval_block)))
        return [t.trial_id for t in sweep.trials]

    assert ids("") == ids("eval: {cas: false}\n") == PINNED_IDS
    with_cas = load_sweep(str(write_sweep(PINNED_SWEEP + "eval: {cas: true}\n")))
    assert all(t.eval.cas for t in with_cas.trials)
    assert not {t.trial_id for t in with_cas.trials} & set(PINNED_IDS)
    assert Trial.from_json(with_cas.trials[0].to_json()) == with_cas.trials[0]
    for bad in ('"yes"', "1", "[true]"):
        with pytest.raises(SpecError, match=r"eval\.cas.*true or false") as info:
            load_sweep(str(write_sweep(PINNED_SWEEP + f"eval: {{cas: {bad}}}\n")))
        assert len(str(info.value).splitlines()) <= 2


def test_classifier_training_is_in_proportion_to_the_data() -> None:
    from suite.common.errors import GenbenchError
    from suite.metrics.backbones.classifier import DEFAULT_CONFIG, training_steps

    assert training_steps(8000) == DEFAULT_CONFIG.steps == 250  # the recipe as measured
    assert training_steps(60_000) == 250
    assert training_steps(1000) == 140 and training_steps(240) == 20
    with pytest.raises(GenbenchError, match="too few"):
        training_steps(100)


def test_a_dataset_may_declare_its_own_classifier_budget() -> None:
    """CIFAR-10 keeps 800 steps (61.9% against 50.7% at 300); a dataset that declares
    nothing, an npz file included, gets the default; only the steps differ."""
    from dataclasses import replace

    from suite.metrics.backbones.cas import cas_config
    from suite.metrics.backbones.classifier import DEFAULT_CONFIG, classifier_config, training_steps

    cifar = classifier_config("cifar10")
    assert cifar == replace(DEFAULT_CONFIG, steps=800)
    assert training_steps(8000, cifar) == 800 and training_steps(8000) == 250
    for name in ("mnist", "fashion_mnist", "npz:/data/digits.npz"):
        assert classifier_config(name) == DEFAULT_CONFIG
    assert cas_config("cifar10", (0, 4)).steps == 800
    mnist = cas_config("mnist", (0, 4))
    assert mnist == replace(DEFAULT_CONFIG, seed=mnist.seed)
    assert cas_config("mnist", (0, 4)).seed != cas_config("mnist", (0, 8)).seed
