"""Issue 11 on real MNIST and the real domain classifier: density/coverage, FD_inf and
the real-vs-real floors in every row, the classification accuracy score, and a domain
classifier whose training is in proportion to its data."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from suite.data.catalog import load_dataset
from suite.metrics.backbones.cas import cas_columns
from suite.metrics.backbones.classifier import training_steps
from suite.metrics.backbones.registry import clear_backbone_cache, get_backbone
from suite.metrics.cache import clear_loaded_references
from suite.store import schema
from suite.sweep.spec import EvalSpec, Trial
from suite.trial.evaluate import evaluate_milestone

N = 300
QUALIFIED = {schema.DENSITY_DOMAIN, schema.COVERAGE_DOMAIN, schema.FD_DOMAIN_INF,
             schema.FD_DOMAIN_FLOOR, schema.KID_DOMAIN_FLOOR, schema.PRECISION_DOMAIN_FLOOR,
             schema.RECALL_DOMAIN_FLOOR, schema.DENSITY_DOMAIN_FLOOR,
             schema.COVERAGE_DOMAIN_FLOOR, schema.N_FLOOR}


def make_trial(model: str = "cgan", n: int = N, cas: bool = False) -> Trial:
    return Trial(sweep="t", index=0, dataset="mnist", model=model, upsampling="transpose",
                 latent_dim=16, epochs=1, milestones=(1,), seed=4, batch_size=64, lr=1e-3,
                 lr_scaling="none", kernel_size=5, workers=1, max_train_images=None,
                 eval=EvalSpec(n_samples=n, backbones=("domain",), batch_size=100, cas=cas))


class RealDigits:
    """A perfect generator: unseen real digits (training split) of the requested class;
    with `ignore_labels`, digits of any class, whatever was asked."""

    def __init__(self, data, ignore_labels: bool = False) -> None:
        self.data, self.ignore_labels, self.start = data, ignore_labels, 0

    def generate(self, noise, labels):
        data, start = self.data, self.start
        self.start += len(noise)
        if labels is None or self.ignore_labels:
            return data.x_train[start:start + len(noise)].astype(np.float32) / 255.0
        pools = [data.x_train[data.y_train == c] for c in range(10)]
        rank = np.arange(start, start + len(labels)) // 10
        return np.stack([pools[c][r] for c, r in zip(labels, rank, strict=True)]
                        ).astype(np.float32) / 255.0


class Noise:
    def generate(self, noise, labels):
        return np.random.default_rng(len(noise)).random((len(noise), 28, 28, 1), np.float32)


@pytest.fixture(scope="module")
def backbones(eval_cache, mnist):
    return {"domain": get_backbone("domain", mnist)}


def test_rows_carry_density_coverage_fd_inf_and_floors(mnist, backbones) -> None:
    clear_loaded_references()
    real = evaluate_milestone(RealDigits(mnist), mnist, make_trial(), backbones, epoch=1)
    noise = evaluate_milestone(Noise(), mnist, make_trial(), backbones, epoch=1)
    for row in (real, noise):
        assert QUALIFIED <= set(row)
        assert all(math.isfinite(row[c]) for c in QUALIFIED)
        assert row[schema.N_FLOOR] == min(N, len(mnist.x_eval) // 2) == N
        assert row[schema.FD_DOMAIN_FLOOR] > 0
        for c in (schema.PRECISION_DOMAIN_FLOOR, schema.RECALL_DOMAIN_FLOOR,
                  schema.COVERAGE_DOMAIN_FLOOR, schema.COVERAGE_DOMAIN):
            assert 0.5 < row[c] <= 1.0 or row is noise and c == schema.COVERAGE_DOMAIN
    # The floor is the data's, not the model's: the same in both rows.
    assert all(real[c] == noise[c] for c in QUALIFIED if c.endswith("_floor"))
    # KID is unbiased: its floor is zero within noise, far below a bad model's KID.
    assert abs(real[schema.KID_DOMAIN_FLOOR]) < 0.02 * noise[schema.KID_DOMAIN]
    # Real digits score at their floor; noise is far above it and below it on coverage.
    assert real[schema.FD_DOMAIN] < 2.0 * real[schema.FD_DOMAIN_FLOOR]
    assert noise[schema.FD_DOMAIN] > 20 * noise[schema.FD_DOMAIN_FLOOR]
    assert noise[schema.COVERAGE_DOMAIN] < 0.2 < 0.6 < real[schema.COVERAGE_DOMAIN]
    assert 0.6 < real[schema.DENSITY_DOMAIN] < 1.6
    # FD_inf: below FD at n where FD is mostly its bias (FD's bias is upwards); where the
    # distance itself dominates, within a few percent of it.
    assert real[schema.FD_DOMAIN_INF] < real[schema.FD_DOMAIN]
    assert noise[schema.FD_DOMAIN_INF] == pytest.approx(noise[schema.FD_DOMAIN], rel=0.05)


def test_floor_is_cached_with_the_reference(eval_cache, mnist, backbones) -> None:
    clear_loaded_references()
    first = evaluate_milestone(Noise(), mnist, make_trial(n=200), backbones, epoch=1)
    files = sorted((eval_cache / "reference").glob("mnist_*_domain_*_n200_*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    clear_loaded_references()  # as a new process: read from disk, not recomputed
    again = evaluate_milestone(Noise(), mnist, make_trial(n=200), backbones, epoch=1)
    assert files[0].stat().st_mtime_ns == stamp
    assert first == again
    assert first[schema.N_FLOOR] == 200


def test_cas_of_label_faithful_samples_is_high_and_deterministic(mnist) -> None:
    labels = np.arange(2000) % 10
    faithful = RealDigits(mnist).generate(np.zeros((2000, 1)), labels)
    first = cas_columns(faithful, labels, mnist, seed=(4, 1))
    assert first[schema.CAS] > 0.9, first
    protocol = first[schema.CAS_PROTOCOL]
    assert "2000 generated images" in protocol and "2000 real images" in protocol
    assert f"{training_steps(2000)} steps" in protocol
    again = cas_columns(faithful, labels, mnist, seed=(4, 1))
    assert again == first  # deterministic from (seed, epoch)
    careless = RealDigits(mnist, ignore_labels=True).generate(np.zeros((2000, 1)), labels)
    assert cas_columns(careless, labels, mnist, seed=(4, 1))[schema.CAS] < 0.3


def test_cas_is_nan_with_a_reason_where_it_cannot_be_measured(mnist) -> None:
    for fake, labels, reason in ((np.zeros((300, 28, 28, 1), np.float32), None,
                                  "unconditional"),
                                 (None, np.arange(300) % 10, "not finite"),
                                 (np.zeros((50, 28, 28, 1), np.float32), np.arange(50) % 10,
                                  "fewer than one training batch")):
        columns = cas_columns(fake, labels, mnist, seed=(0, 1))
        assert math.isnan(columns[schema.CAS]) and reason in columns[schema.CAS_PROTOCOL]


def test_eval_cas_fills_the_row_only_when_asked(mnist, backbones) -> None:
    plain = evaluate_milestone(RealDigits(mnist), mnist, make_trial(), backbones, epoch=1)
    assert schema.CAS not in plain and schema.CAS_PROTOCOL not in plain
    unconditional = evaluate_milestone(RealDigits(mnist), mnist, make_trial("dcgan", cas=True),
                                       backbones, epoch=1)
    assert math.isnan(unconditional[schema.CAS])


def test_domain_classifier_trains_in_proportion_to_a_small_dataset(tmp_path, mnist,
                                                                   eval_cache) -> None:
    path = tmp_path / "small.npz"
    np.savez(path, x=mnist.x_train[:240], y=mnist.y_train[:240])
    small = load_dataset(f"npz:{path}")
    assert training_steps(len(small.x_train)) == 20  # 20 passes of one batch, not 800 steps
    clear_backbone_cache()
    started = time.perf_counter()
    extractor = get_backbone("domain", small)
    seconds = time.perf_counter() - started
    assert extractor.meta["trained_now"] is True
    assert seconds < 60, seconds  # 442 s before (800 one-step fit() calls)
    assert extractor.meta["eval_accuracy"] > 0.3  # far above chance from 192 images
    # n_samples beyond the eval split (48 images): the reference is all of it, the floor
    # compares its two halves, and no image is pushed through the backbone twice.
    assert len(small.x_eval) == 48
    row = evaluate_milestone(Noise(), small, make_trial(n=64), {"domain": extractor}, epoch=1)
    assert (row[schema.N_REAL], row[schema.N_FAKE], row[schema.N_FLOOR]) == (48, 64, 24)
    assert all(math.isfinite(row[c]) for c in QUALIFIED)
    assert row[schema.FD_DOMAIN] > row[schema.FD_DOMAIN_FLOOR] > 0
    clear_backbone_cache()
