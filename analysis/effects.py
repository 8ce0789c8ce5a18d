"""The upsampling effect: each variant against a baseline on paired trials, with
percentile-bootstrap intervals over the pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.rows import DESIGN_COLUMNS, require_columns, select_rows
from suite.store import schema


def upsampling_effect(df: pd.DataFrame, metrics: Sequence[str] = (),
                      baseline: str = "transpose", by: Sequence[str] = (),
                      at_epoch: int | str | None = "final", n_boot: int = 2000, seed: int = 0,
                      confidence: float = 0.95, ok_only: bool = True) -> pd.DataFrame:
    """Each upsampling variant against `baseline`, on paired trials.

    A pair is two rows that agree on every design column but upsampling, and on
    seed and epoch (so model, latent_dim, dataset, workers ... all match). For each
    metric: the mean paired difference (variant - baseline). For throughput
    (images_per_sec): the geometric mean of the paired ratios variant / baseline.
    Percentile bootstrap intervals over pairs (`n_boot` resamples, seeded); NaN
    with fewer than two pairs. Metrics without any pair are left out and listed
    in `result.attrs["skipped"]`.

    Columns: by..., variant, baseline, metric, kind ("difference" | "ratio"),
    n_pairs, baseline_mean, variant_mean, estimate, ci_low, ci_high.
    """
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
                v = sub[f"{metric}_v"].to_numpy(dtype="float64", na_value=np.nan)
                b = sub[f"{metric}_b"].to_numpy(dtype="float64", na_value=np.nan)
                ok = np.isfinite(v) & np.isfinite(b)
                if kind == "ratio":
                    ok &= (v > 0) & (b > 0)
                if not ok.any():
                    continue
                with_pairs.add(metric)
                v, b = v[ok], b[ok]
                x = np.log(v / b) if kind == "ratio" else v - b
                estimate, low, high = bootstrap_mean(x, n_boot, seed, confidence)
                if kind == "ratio":
                    estimate, low, high = np.exp([estimate, low, high])
                out_rows.append({**dict(zip(by, group, strict=True)), "variant": variant,
                                 "baseline": baseline, "metric": metric, "kind": kind,
                                 "n_pairs": int(ok.sum()), "baseline_mean": float(b.mean()),
                                 "variant_mean": float(v.mean()), "estimate": float(estimate),
                                 "ci_low": float(low), "ci_high": float(high)})
    columns = [*by, "variant", "baseline", "metric", "kind", "n_pairs", "baseline_mean",
               "variant_mean", "estimate", "ci_low", "ci_high"]
    out = pd.DataFrame(out_rows, columns=columns)
    out.attrs.update(skipped=[m for m in values if m not in with_pairs], baseline=baseline,
                     confidence=confidence, n_boot=n_boot, at_epoch=at_epoch)
    return out


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
