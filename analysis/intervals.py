"""Student-t confidence intervals of a mean across seeds, and `compare` tables shown as
"mean [low, high]": the aggregated report's way to say how sure a mean is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats


def t_interval(mean: Any, std: Any, n: Any,
               confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the two-sided t-interval mean ± t(n-1) * std / sqrt(n), elementwise;
    NaN where n < 2 (one seed says nothing about the spread)."""
    mean = np.asarray(mean, dtype="float64")
    std = np.asarray(std, dtype="float64")
    n = np.asarray(n, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        dof = np.where(n >= 2, n - 1, np.nan)
        half = scipy_stats.t.ppf(0.5 + confidence / 2, dof) * std / np.sqrt(n)
    return mean - half, mean + half


def with_interval(stats: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """A frame with "mean", "std" and "n" columns, plus "ci_low" and "ci_high"."""
    low, high = t_interval(stats["mean"], stats["std"], stats["n"], confidence)
    return stats.assign(ci_low=low, ci_high=high)


def mean_ci_text(mean: Any, std: Any, n: Any, confidence: float = 0.95,
                 digits: int = 4) -> str:
    """One cell: "12.3 [11.1, 13.5]", the mean alone for one seed, "" without data."""
    if pd.isna(mean) or (not pd.isna(n) and int(n) == 0):
        return ""
    text = f"{mean:.{digits}g}"
    low, high = t_interval(mean, std, n, confidence)
    if not np.isfinite(low) or not np.isfinite(high):
        return text
    return f"{text} [{float(low):.{digits}g}, {float(high):.{digits}g}]"


def format_mean_ci(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """A `compare` table (mean, std, n per cell) as "mean [low, high]" strings."""
    if not isinstance(table.columns, pd.MultiIndex):
        name = table.attrs.get("metric", "value")
        return pd.DataFrame({name: [mean_ci_text(m, s, n, confidence) for m, s, n in zip(
            table["mean"], table["std"], table["n"], strict=True)]}, index=table.index)
    keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    out = pd.DataFrame(index=table.index)
    for k in keys:
        out[" / ".join(str(v) for v in k)] = [
            mean_ci_text(m, s, n, confidence) for m, s, n in zip(
                table[(*k, "mean")], table[(*k, "std")], table[(*k, "n")], strict=True)]
    out.columns.name = " / ".join(str(n) for n in table.columns.names[:-1])
    return out
