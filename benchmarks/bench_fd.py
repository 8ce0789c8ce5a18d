"""Time the eigvalsh Frechet distance against the classic scipy sqrtm one at 2048-d.

Run by hand: `.venv/bin/python benchmarks/bench_fd.py [--samples N] [--repeats R]`.
The reference (real) side is prepared once, as the suite caches it; the
per-evaluation figure is what each trained model then pays.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from suite.metrics.fid import (
    features_to_stats,
    frechet_distance_sqrtm,
    prepare_reference,
    stats_to_fd,
)

DIM = 2048


def build_features(
    rng: np.random.Generator, mixing: np.ndarray, n: int, shift: float
) -> np.ndarray:
    """Inception-pool-like features: correlated, decaying spectrum, post-ReLU."""
    return np.maximum(0.25 * rng.standard_normal((n, DIM)) @ mixing + 0.2 + shift, 0.0)


def time_call(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Return (best seconds, value) over repeats; best, as the machine is shared."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=10_000, help="samples per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the fast path")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((DIM, DIM)) * (np.arange(1, DIM + 1) ** -0.5)[:, None]
    real = features_to_stats(build_features(rng, mixing, args.samples, 0.0))
    fake = features_to_stats(build_features(rng, mixing, args.samples, 0.02))
    trace = real.sigma.trace()
    print(f"statistics: d={DIM}, n={args.samples} per side, tr(sigma_real)={trace:.2f}")

    start = time.perf_counter()
    ref = prepare_reference(real)
    prepare_s = time.perf_counter() - start
    fast_s, fast_fd = time_call(lambda: stats_to_fd(fake, ref), args.repeats)
    sqrtm_s, sqrtm_fd = time_call(
        lambda: frechet_distance_sqrtm(real.mu, real.sigma, fake.mu, fake.sigma), 1
    )

    print(f"prepare_reference (one-off eigh): {prepare_s:8.3f} s")
    print(f"stats_to_fd per evaluation:       {fast_s:8.3f} s  (best of {args.repeats})")
    print(f"scipy sqrtm per evaluation:       {sqrtm_s:8.3f} s  (1 run)")
    print(f"speed-up per evaluation:          {sqrtm_s / fast_s:8.1f} x")
    print(f"speed-up incl. prepare:           {sqrtm_s / (fast_s + prepare_s):8.1f} x")
    print(f"FD eigvalsh = {fast_fd:.12f}")
    print(f"FD sqrtm    = {sqrtm_fd:.12f}")
    print(f"relative difference: {abs(fast_fd - sqrtm_fd) / abs(sqrtm_fd):.3e}")


if __name__ == "__main__":
    main()
