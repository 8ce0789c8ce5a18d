"""The input pipeline: per-epoch order from (seed, epoch), every epoch cut to the same
steps, and no tf.data autotuner (its thread made every iterator's destruction wait)."""

from __future__ import annotations

import numpy as np

from suite.training.batches import EpochBatches


def batches_of(x: np.ndarray, epoch: int, **kw) -> list[np.ndarray]:
    b = EpochBatches(x, None, 4, 7, (-1.0, 1.0), **kw)
    return [images.numpy() for images, _ in b.for_epoch(epoch)]


def test_epoch_order_depends_on_seed_and_epoch_only():
    x = np.arange(10 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2, 1)
    first, again, second = batches_of(x, 1), batches_of(x, 1), batches_of(x, 2)
    assert len(first) == 2 and all(b.shape == (4, 2, 2, 1) for b in first)  # 10 // 4 steps
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not all((a == b).all() for a, b in zip(first, second, strict=True))
    assert first[0].min() >= -1.0 and first[0].max() <= 1.0


def test_ranks_take_disjoint_shards_of_one_permutation():
    x = np.arange(16, dtype=np.uint8).reshape(16, 1, 1, 1)
    shards = [np.concatenate(batches_of(x, 3, rank=r, num_ranks=2)).ravel() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 8
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_the_pipeline_runs_without_the_autotuner():
    """With autotuning on, deleting an epoch's iterator after a compiled call drained it
    waited ~8 s for the autotuner thread, every epoch (the demo DCGAN's 12 s epochs took
    20 s of wall time)."""
    b = EpochBatches(np.zeros((8, 2, 2, 1), np.uint8), None, 4, 0, (0.0, 1.0))
    assert b.for_epoch(1).options().autotune.enabled is False
