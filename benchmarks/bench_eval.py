"""Evaluation time per milestone, split into generation, features and statistics, and
what issue 11's additions (noise floor, FD_inf, density/coverage) cost, in one run.

    .venv/bin/python benchmarks/bench_eval.py [--n-samples 10000] [--dataset mnist]
        [--backbones domain inception inception_keras] [--inception-weights random]

Per backbone, on an untrained DCGAN's samples (an evaluation costs the same
whatever the weights):

- once per machine: the reference (real features, statistics, k-NN radii) and
  the floor (the same scores between two disjoint real subsets), cached together;
- per milestone: generation (shared by the backbones), the backbone's features of
  the samples, and the statistics *before* (FD, KID, precision/recall computing
  both sets of k-NN radii: the code before issue 11, kept below) and *after*
  (`reference_to_scores`: FD, KID, precision/recall/density/coverage from one
  pass with the cached real radii, FD_inf; the floors are read from the reference);
- overhead = (after - before) / (generation + features + before), in CPU seconds
  (robust to other processes on a shared machine); times print as CPU/wall seconds,
  the statistics the best of `--repeats`, features and generation timed once.

Without the real TTUR graph (offline), `--inception-weights random` runs the
`inception` backbone on its small stand-in graph: its statistics are 2048-d as
the real graph's, its feature time is not (the real graph costs about what
`inception_keras`, the same InceptionV3 network, costs). Random weights also give
nearly degenerate features, whose FDs are cheap; the last row times the
statistics on full-rank 2048-d features instead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A fresh cache unless one is given, so the one-off reference and floor are timed cold.
os.environ.setdefault("GENBENCH_CACHE", tempfile.mkdtemp(prefix="bench-eval-"))

import numpy as np  # noqa: E402

from suite.data.catalog import load_dataset  # noqa: E402
from suite.metrics.backbones.registry import get_backbone  # noqa: E402
from suite.metrics.blas import blas_threads  # noqa: E402
from suite.metrics.cache import features_to_reference  # noqa: E402
from suite.metrics.fid import check_features, features_to_stats, stats_to_fd  # noqa: E402
from suite.metrics.kid import features_to_kid  # noqa: E402
from suite.metrics.precision_recall import (  # noqa: E402
    features_to_knn_radii,
    iter_squared_distances,
)
from suite.metrics.scores import (  # noqa: E402
    KID_SEED,
    KID_SUBSETS,
    PR_NEIGHBOURS,
    kid_subset_size,
    reference_to_scores,
)
from suite.trial.evaluate import NOISE_SALT, generate_images, real_reference  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """CPU seconds of this process (all its threads: robust to other load on a shared
    machine, and what the work costs) and wall seconds, of the best of some calls."""

    cpu: float
    wall: float

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.cpu + other.cpu, self.wall + other.wall)

    def __str__(self) -> str:
        return f"{self.cpu:.1f}/{self.wall:.1f} s"


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[Timing, object]:
    """(timing of the call with the least CPU time, its value) over `repeats` calls."""
    best, value = Timing(float("inf"), float("inf")), None
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        value = fn()
        took = Timing(time.process_time() - cpu, time.perf_counter() - wall)
        best = min(best, took, key=lambda t: t.cpu)
    return best, value


def legacy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall as computed before issue 11: both radii at every evaluation."""
    x, y = check_features(real), check_features(fake)
    real_radii, fake_radii = features_to_knn_radii(x, k), features_to_knn_radii(y, k)
    fake_in_real = np.zeros(len(y), dtype=bool)
    real_in_fake = np.zeros(len(x), dtype=bool)
    for rows, d2 in iter_squared_distances(y, x, 1024):
        fake_in_real[rows] = (d2 <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (d2 <= fake_radii[rows, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())


def statistics_before(reference, fake: np.ndarray) -> dict[str, float]:
    fd = stats_to_fd(features_to_stats(fake), reference.prepared)
    kid, _ = features_to_kid(reference.features, fake, n_subsets=KID_SUBSETS,
                             subset_size=kid_subset_size(len(reference.features), len(fake)),
                             seed=KID_SEED)
    precision, recall = legacy_precision_recall(reference.features, fake, PR_NEIGHBOURS)
    return {"fd": fd, "kid": kid, "precision": precision, "recall": recall}


def statistics_after(reference, fake: np.ndarray) -> dict[str, float]:
    scores = reference_to_scores(reference, fake)
    scores.update({f"{m}_floor": v for m, v in reference.floor.items()})
    return scores


def build_generator(data, n: int, batch: int) -> tuple[float, np.ndarray]:
    import keras

    from suite.models import MODELS
    from suite.models.networks import NetSpec

    keras.utils.set_random_seed(0)
    model = MODELS.get("dcgan")(NetSpec(data.image_shape, 100, 0, "transpose", 5), 1e-4, 0)
    noise = np.random.default_rng([NOISE_SALT, 0, 1]).standard_normal((n, 100)).astype("f4")
    generate_images(model, noise[:batch], None, batch)  # compile outside the clock
    return timed(lambda: generate_images(model, noise, None, batch))


def synthetic_statistics(n_real: int, n_fake: int, repeats: int, dim: int = 2048) -> None:
    """Before/after statistics on full-rank Inception-like features: random-weight networks
    give nearly degenerate features, whose FDs are cheaper than real ones."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((dim, dim)) * (np.arange(1, dim + 1) ** -0.5)[:, None]

    def features(n: int, shift: float) -> np.ndarray:
        z = rng.standard_normal((n, dim)).astype(np.float32) @ mixing.astype(np.float32)
        return np.maximum(0.25 * z + 0.2 + shift, 0.0)

    with blas_threads(1):
        reference = features_to_reference(features(n_real, 0.0), None, PR_NEIGHBOURS)
        fake = features(n_fake, 0.05)
        before_s, _ = timed(lambda: statistics_before(reference, fake), repeats)
        after_s, after = timed(lambda: statistics_after(reference, fake), repeats)
    print(f"synthetic {dim}-d (full rank) | - | - | {before_s} | {after_s} | statistics "
          f"{after_s.cpu - before_s.cpu:+.1f} CPU s per milestone (fd {after['fd']:.4g}, "
          f"fd_inf {after['fd_inf']:.4g})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--backbones", nargs="+", default=["domain", "inception",
                                                           "inception_keras"])
    parser.add_argument("--inception-weights", default="random")
    parser.add_argument("--repeats", type=int, default=3, help="best of, for the statistics")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="skip the full-rank 2048-d statistics row")
    args = parser.parse_args()

    data = load_dataset(args.dataset, args.data_dir)
    n_real = min(args.n_samples, len(data.x_eval))
    generation_s, fake_images = build_generator(data, args.n_samples, args.batch_size)
    print(f"{args.dataset}: n_fake {args.n_samples}, n_real {n_real} ({data.eval_split}); "
          f"generation (DCGAN, batch {args.batch_size}): {generation_s} (CPU/wall)")
    header = ("backbone", "ref+floor (once)", "features", "stats before", "stats after",
              "milestone before", "after", "overhead (CPU)")
    print(" | ".join(header))
    for name in args.backbones:
        built_s, backbone = timed(lambda n=name: get_backbone(n, data, args.inception_weights))
        with blas_threads(1):  # as evaluate_milestone runs them
            cold_s, reference = timed(lambda b=backbone, n=name: real_reference(b, n, data,
                                                                                n_real))
            backbone.images_to_features(fake_images[:args.batch_size])  # compile
            features_s, fake = timed(lambda b=backbone: b.images_to_features(fake_images))
            before_s, before = timed(lambda r=reference, f=fake: statistics_before(r, f),
                                     args.repeats)
            after_s, after = timed(lambda r=reference, f=fake: statistics_after(r, f),
                                   args.repeats)
        assert before["fd"] == after["fd"] and before["kid"] == after["kid"]
        assert (before["precision"], before["recall"]) == (after["precision"], after["recall"])
        old = generation_s + features_s + before_s
        new = generation_s + features_s + after_s
        print(f"{name} | {cold_s} | {features_s} | {before_s} | {after_s} | {old} | {new} | "
              f"{100 * (new.cpu - old.cpu) / old.cpu:+.1f}%")
        print(f"    (built in {built_s}; fd {after['fd']:.4g}, fd_inf "
              f"{after['fd_inf']:.4g}, floor {after.get('fd_floor', float('nan')):.4g} at "
              f"n_floor {reference.n_floor}; density {after['density']:.3f}, coverage "
              f"{after['coverage']:.3f}; feature dim {fake.shape[1]})", flush=True)
    if not args.no_synthetic:
        synthetic_statistics(n_real, args.n_samples, args.repeats)


if __name__ == "__main__":
    main()
