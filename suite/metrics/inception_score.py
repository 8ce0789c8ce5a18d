"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))).

High when each sample is classified confidently (low-entropy p(y|x)) and the
classes are spread evenly (high-entropy p(y)); ranges from 1 to n_classes.
Splits follow the original code: contiguous chunks, mean and std of the scores.
"""

from __future__ import annotations

import numpy as np
import scipy.special


def probs_to_split_score(probs: np.ndarray, log_probs: np.ndarray | None = None) -> float:
    """exp(mean KL(p(y|x) || p(y))) for one split; xlogy makes 0 * log 0 = 0.

    Given log-probabilities (from logits), p log p uses them directly, keeping
    precision where p itself underflows.
    """
    marginal = probs.mean(axis=0)
    if log_probs is None:
        neg_entropy = scipy.special.xlogy(probs, probs).sum(axis=1)
    else:
        neg_entropy = (probs * log_probs).sum(axis=1)
    kl = neg_entropy - scipy.special.xlogy(probs, marginal).sum(axis=1)
    return float(np.exp(kl.mean()))


def split_scores_to_inception_score(
    probs: np.ndarray, log_probs: np.ndarray | None, n_splits: int
) -> tuple[float, float]:
    """Score contiguous splits (as the original code slices them); return mean, std."""
    n = probs.shape[0]
    if not 1 <= n_splits <= n:
        raise ValueError(f"need 1 <= n_splits <= n_samples ({n}); got {n_splits}")
    scores = []
    for i in range(n_splits):
        rows = slice(i * n // n_splits, (i + 1) * n // n_splits)
        split_log = None if log_probs is None else log_probs[rows]
        scores.append(probs_to_split_score(probs[rows], split_log))
    return float(np.mean(scores)), float(np.std(scores))


def check_scores(values: np.ndarray) -> np.ndarray:
    """Return values as a finite float64 (n, n_classes) array, or raise ValueError."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"need an (n, n_classes >= 2) array; got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("class scores contain NaN or inf")
    return x


def logits_to_inception_score(logits: np.ndarray, n_splits: int = 10) -> tuple[float, float]:
    """Inception Score from (n, n_classes) logits; log-softmax keeps it stable."""
    log_probs = scipy.special.log_softmax(check_scores(logits), axis=1)
    return split_scores_to_inception_score(np.exp(log_probs), log_probs, n_splits)


def probs_to_inception_score(probs: np.ndarray, n_splits: int = 10) -> tuple[float, float]:
    """Inception Score from (n, n_classes) softmax probabilities (rows sum to 1)."""
    p = check_scores(probs)
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs must be non-negative with rows summing to 1; pass logits?")
    return split_scores_to_inception_score(p, None, n_splits)
