"""The compiled training function: K steps per call, on the device.

One `tf.function` runs a `tf.while_loop` of up to K steps over the epoch's
dataset iterator (as Keras' `steps_per_execution` does): each step is the
family's `train_batch`, whose gradients and losses go through one fused
collective, and the replica-averaged losses are summed on the device in
float64. The host reads one small vector per call (steps run, whether the last
step's losses were finite, the sums, the last losses), so a GPU is not stalled
between steps. The loop stops after the first step whose losses are not
finite: every replica sees the same averaged losses and stops at the same step.

K is an argument (a tensor), so the last, shorter call of an epoch and every K
share one trace; the loop body is the same graph for every K, so K=1 and K=8
give identical weights after the same steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import tensorflow as tf

from suite.models.base import GenerativeModel
from suite.training.replicas import Replicas


@dataclass(frozen=True)
class CallResult:
    """What the host learns from one call."""

    steps: int  # steps run: the requested number, or up to the first non-finite one
    finite: bool  # the last step's losses were all finite
    sums: dict[str, float]  # sums over the steps run of the replica-averaged losses
    last: dict[str, float]  # the last step's losses


class DeviceLoop:
    """`run(iterator, steps)`: train `steps` steps in one compiled call."""

    def __init__(self, model: GenerativeModel, replicas: Replicas,
                 jit_compile: bool = False) -> None:
        self.names = tuple(model.loss_names)
        self._model, self._replicas = model, replicas
        reduce = replicas.average_gradients
        # XLA compiles the step (forward, backward, collective, optimiser update), not the
        # loop around it: the dataset iterator's ops cannot be compiled.
        self._train_batch = tf.function(
            lambda images, labels: model.train_batch(images, labels, reduce),
            jit_compile=True) if jit_compile else (
            lambda images, labels: model.train_batch(images, labels, reduce))
        self._function = tf.function(self._steps)

    def _steps(self, iterator, n):
        names, train_batch = self.names, self._train_batch

        def keep_going(i, finite, sums, last):
            return tf.logical_and(i < n, finite)

        def step(i, finite, sums, last):
            images, labels = iterator.get_next()
            losses = train_batch(images, labels)
            values = [tf.reshape(tf.cast(losses[k], tf.float32), []) for k in names]
            ok = tf.reduce_all(tf.math.is_finite(tf.stack(values)))
            sums = [s + tf.cast(v, tf.float64) for s, v in zip(sums, values, strict=True)]
            return i + 1, ok, sums, values

        start = (tf.constant(0), tf.constant(True),
                 [tf.constant(0.0, tf.float64) for _ in names],
                 [tf.constant(0.0, tf.float32) for _ in names])
        # parallel_iterations=1: each step reads the weights the previous one wrote.
        i, finite, sums, last = tf.while_loop(keep_going, step, start, parallel_iterations=1)
        return tf.concat([tf.cast(tf.stack([i]), tf.float64),
                          tf.cast(tf.stack([finite]), tf.float64),
                          tf.stack(sums), tf.cast(tf.stack(last), tf.float64)], axis=0)

    def run(self, iterator, steps: int) -> CallResult:
        """One call; its result vector is the call's one read from the device."""
        out = self._function(iterator, tf.constant(steps, tf.int32)).numpy()
        k = len(self.names)
        return CallResult(steps=int(out[0]), finite=bool(out[1]),
                          sums=dict(zip(self.names, out[2:2 + k].tolist(), strict=True)),
                          last=dict(zip(self.names, out[2 + k:].tolist(), strict=True)))

    @property
    def traces(self) -> int:
        """How often the function was traced: once per process, whatever the call sizes."""
        return int(self._function.experimental_get_tracing_count())

    def measure_overhead(self, iterator, repeats: int = 5) -> float:
        """Seconds of a call that runs no step (dispatch, launch, host read): the best of
        `repeats`. It consumes no batch and changes no state."""
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            self.run(iterator, 0)
            best = min(best, time.perf_counter() - started)
        return best
