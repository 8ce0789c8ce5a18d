"""The one rule on batches, shared by sweep validation and the train loop (no TensorFlow)."""

from __future__ import annotations


def batch_fill_problem(n_images: int, global_batch: int) -> str | None:
    """The one rule: a run needs at least one full global batch (every step drops the
    remainder, so fewer images would give zero steps). None when it holds."""
    if n_images >= global_batch:
        return None
    return f"{n_images:,} training images cannot fill one global batch of {global_batch:,}"
