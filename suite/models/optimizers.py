"""Keras optimisers that a process can build and trace thousands of times.

Before every update, Keras' TensorFlow optimiser sums the gradients over the
replicas of the current `tf.distribute` strategy. genbench does not use
tf.distribute (Horovod averages inside the step: suite.training.horovod), so the
strategy is the default one, with one replica, and that sum is the identity.
TensorFlow builds it with `tf.custom_gradient`, whose graph-mode version
registers a gradient function in a process-wide registry at every trace and
never removes it; the function holds the traced graph. So each trial run in the
launcher's own process (the local launcher's one-worker trials, a Ray actor's
trials) left its traced steps alive: measured, 11.7 MB more driver memory per
trial over 60 tiny trials (benchmarks/bench_launchers.py), 64 tf.cond branch
graphs and a while-loop body each. The optimisers here skip the sum under the
default strategy and keep it under any other.
"""

from __future__ import annotations

from typing import Any

# Keras' TensorFlow optimiser method that sums gradients over tf.distribute replicas.
_REPLICA_SUM = "_all_reduce_sum_gradients"


def one_replica_optimizer(optimizer: Any) -> Any:
    """`optimizer`, which no longer sums over tf.distribute's replicas under the
    default strategy (one replica: the same update, without the registry leak).
    An optimiser of another backend, or a Keras without the method, is returned
    as it is."""
    import tensorflow as tf

    inner = getattr(optimizer, "inner_optimizer", None)  # a LossScaleOptimizer's
    for target in (optimizer, inner):
        replica_sum = getattr(target, _REPLICA_SUM, None)
        if replica_sum is not None:
            setattr(target, _REPLICA_SUM, _default_strategy_skips(replica_sum, tf))
    return optimizer


def _default_strategy_skips(replica_sum: Any, tf: Any) -> Any:
    def sum_over_replicas(grads_and_vars: Any) -> Any:
        if tf.distribute.has_strategy():
            return replica_sum(grads_and_vars)
        return list(grads_and_vars)

    return sum_over_replicas
