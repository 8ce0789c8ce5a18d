"""The upsampling effect: each variant against a baseline on paired trials, with
Student-t intervals over the pairs (n_pairs - 1 degrees of freedom), none below
MIN_PAIRS pairs.

Why t and not the percentile bootstrap: with a handful of pairs the bootstrap
resamples the same few numbers and its interval is far too narrow (from 2 pairs it
spans the two differences, and covers the true effect about half the time); the
t-interval widens with the few degrees of freedom as it should."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.intervals import t_interval
from analysis.rows import DESIGN_COLUMNS, require_columns, select_rows
from suite.store import schema

# Fewest pairs an interval is given for: from 2, a 95% t-interval has one degree of
# freedom (mean +- 12.7 standard errors, the spread estimated from two numbers).
MIN_PAIRS = 3
METHODS = ("t", "bootstrap")


def upsampling_effect(df: pd.DataFrame, metrics: Sequence[str] = (),
                      baseline: str = "transpose", by: Sequence[str] = (),
                      at_epoch: int | str | None = "final", n_boot: int = 2000, seed: int = 0,
                      confidence: float = 0.95, ok_only: bool = True,
                      method: str = "t", min_pairs: int = MIN_PAIRS) -> pd.DataFrame:
    """Each upsampling variant against `baseline`, on paired trials.

    A pair is two rows that agree on every design column but upsampling, and on
    seed and epoch (so model, latent_dim, dataset, workers ... all match). For each
    metric: the mean paired difference (variant - baseline). For throughput
    (images_per_sec): the geometric mean of the paired ratios variant / baseline.
    Intervals over pairs: Student-t (`method="t"`, on log ratios for throughput) or
    percentile bootstrap (`"bootstrap"`, `n_boot` resamples, seeded); NaN with fewer
    than `min_pairs` pairs. Metrics without any pair are left out and listed in
    `result.attrs["skipped"]`.

    Columns: by..., variant, baseline, metric, kind ("difference" | "ratio"),
    n_pairs, baseline_mean, variant_mean, estimate, ci_low, ci_high.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; use one of: {', '.join(METHODS)}")
    by = list(by)
    metrics = [m for m in metrics if m != schema.IMAGES_PER_SEC]
    values = metrics + [schema.IMAGES_PER_SEC]
    require_columns(df, by + values + [schema.UPSAMPLING])
    data = select_rows(df, at_epoch, ok_only)
    keys = [c for c in (*DESIGN_COLUMNS, schema.SEED, schema.EPOCH)
            if c in data and c != schema.UPSAMPLING]
    # repeated rows of one cell (e.g. the same config in two sweeps) count once, averaged
    cells = data.groupby(keys + [schema.UPSAMPLING], dropna=False)[values].mean().reset_index()
    base = cells[cells[schema.UPSAMPLING] == baseline]
    out_rows: list[dict[str, Any]] = []
    with_pairs: set[str] = set()
    variants = sorted(v for v in cells[schema.UPSAMPLING].dropna().unique() if v != baseline)
    for variant in variants:
        var = cells[cells[schema.UPSAMPLING] == variant]
        pairs = var.merge(base, on=keys, suffixes=("_v", "_b"))
        groups = pairs.groupby(by, dropna=False, sort=True) if by else [((), pairs)]
        for group, sub in groups:
            group = group if isinstance(group, tuple) else (group,)
            for metric in values:
                kind = "ratio" if metric == schema.IMAGES_PER_SEC else "difference"
                effect = pair_effect(sub[f"{metric}_v"], sub[f"{metric}_b"], kind,
                                     lambda x: (t_mean(x, confidence) if method == "t" else
                                                bootstrap_mean(x, n_boot, seed, confidence)),
                                     min_pairs)
                if effect is None:
                    continue
                with_pairs.add(metric)
                out_rows.append({**dict(zip(by, group, strict=True)), "variant": variant,
                                 "baseline": baseline, "metric": metric, "kind": kind,
                                 **effect})
    columns = [*by, "variant", "baseline", "metric", "kind", "n_pairs", "baseline_mean",
               "variant_mean", "estimate", "ci_low", "ci_high"]
    out = pd.DataFrame(out_rows, columns=columns)
    out.attrs.update(skipped=[m for m in values if m not in with_pairs], baseline=baseline,
                     confidence=confidence, n_boot=n_boot, at_epoch=at_epoch,
                     method=method, min_pairs=min_pairs)
    return out


def pair_effect(variant: pd.Series, base: pd.Series, kind: str,
                interval: Callable[[np.ndarray], tuple[float, float, float]],
                min_pairs: int) -> dict[str, Any] | None:
    """n_pairs, both means, the estimate and its interval for one metric's pairs (a
    ratio's on the log scale), or None without a usable pair."""
    v = variant.to_numpy(dtype="float64", na_value=np.nan)
    b = base.to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(v) & np.isfinite(b)
    if kind == "ratio":
        ok &= (v > 0) & (b > 0)
    if not ok.any():
        return None
    v, b = v[ok], b[ok]
    x = np.log(v / b) if kind == "ratio" else v - b
    estimate, low, high = interval(x)
    if x.size < min_pairs:
        low = high = np.nan
    if kind == "ratio":
        estimate, low, high = np.exp([estimate, low, high])
    return {"n_pairs": int(ok.sum()), "baseline_mean": float(b.mean()),
            "variant_mean": float(v.mean()), "estimate": float(estimate),
            "ci_low": float(low), "ci_high": float(high)}


def t_mean(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of x and its two-sided Student-t interval, n - 1 degrees of freedom (NaN
    bounds for fewer than 2 values)."""
    x = np.asarray(x, dtype="float64")
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else np.nan
    low, high = t_interval(mean, std, x.size, confidence)
    return mean, float(low), float(high)


def bootstrap_mean(x: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of x and its percentile-bootstrap interval (NaN bounds for fewer than 2 values)."""
    x = np.asarray(x, dtype="float64")
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high)
