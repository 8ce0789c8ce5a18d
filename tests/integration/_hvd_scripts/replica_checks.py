"""Runs on every rank of 2 local ranks (genbench's spawner); test_distributed.py reads the output.

One launch performs all checks because each rank pays a few seconds of
TensorFlow import. Each rank writes OUT_DIR/rank{r}.npz; rank 0 also writes
the single-process reference results. Usage: replica_checks.py OUT_DIR
"""

from __future__ import annotations

import os
import sys

import numpy as np

from suite.ranks.entry import start_replicas
from suite.training.horovod import HorovodReplicas
from suite.training.replicas import Replicas, SingleReplica

HALF_BATCH = 8
FEATURES = 5
ADAM_STEPS = 5


def main(out_dir: str) -> None:
    # Before any TF op: start_replicas() sizes the thread pools.
    replicas = start_replicas()
    assert isinstance(replicas, HorovodReplicas), type(replicas)
    import keras
    import tensorflow as tf

    info = replicas.info
    out: dict[str, np.ndarray] = {
        "info": np.array([info.rank, info.size, info.local_rank, info.local_size]),
        "intra_op_threads": np.array(tf.config.threading.get_intra_op_parallelism_threads()),
        "cores": np.array(len(os.sched_getaffinity(0))),
    }

    def build_model(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.Dense(7, activation="tanh"),
                keras.layers.Dense(1),
            ]
        )
        return model

    def weights(model: keras.Model) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in model.trainable_variables]

    def make_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, reps: Replicas):
        optimizer.build(model.trainable_variables)

        @tf.function
        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                # Mean over the batch: the average of two half-batch gradients
                # is then exactly the full-batch gradient.
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            # A trailing None stands for a variable the loss does not touch.
            averaged = reps.average_gradients([*grads, None])
            assert averaged[-1] is None
            optimizer.apply_gradients(zip(averaged[:-1], model.trainable_variables, strict=True))
            return loss

        return step

    # --- broadcast: ranks start from different seeds, rank 0's weights win.
    model = build_model(seed=100 + info.rank)
    for i, w in enumerate(weights(model)):
        out[f"init_before_bcast_{i}"] = w
    replicas.broadcast_variables(model.trainable_variables)
    initial = weights(model)
    for i, w in enumerate(initial):
        out[f"init_after_bcast_{i}"] = w

    # --- one SGD step, rank r on half r of a shared batch of 2 * HALF_BATCH.
    data = np.random.default_rng(7)
    x_full = data.normal(size=(2 * HALF_BATCH, FEATURES)).astype("float32")
    y_full = data.normal(size=(2 * HALF_BATCH, 1)).astype("float32")
    mine = slice(info.rank * HALF_BATCH, (info.rank + 1) * HALF_BATCH)
    sgd_step = make_step(model, keras.optimizers.SGD(learning_rate=0.1), replicas)
    sgd_step(tf.constant(x_full[mine]), tf.constant(y_full[mine]))
    for i, w in enumerate(weights(model)):
        out[f"sgd_{i}"] = w

    if info.rank == 0:
        # The same step in one process on the full batch, and on rank 0's half
        # alone (what merely syncing weights, without averaging, would give).
        for name, x, y in (("full", x_full, y_full), ("half", x_full[mine], y_full[mine])):
            ref = build_model(seed=0)
            for v, w in zip(ref.trainable_variables, initial, strict=True):
                v.assign(w)
            ref_step = make_step(ref, keras.optimizers.SGD(learning_rate=0.1), SingleReplica())
            ref_step(tf.constant(x), tf.constant(y))
            for i, w in enumerate(weights(ref)):
                out[f"ref_{name}_{i}"] = w

    # --- several Adam steps on data that differs per rank.
    adam = keras.optimizers.Adam(learning_rate=0.01)
    adam_step = make_step(model, adam, replicas)
    own = np.random.default_rng(1000 + info.rank)
    for _ in range(ADAM_STEPS):
        x = own.normal(size=(HALF_BATCH, FEATURES)).astype("float32")
        y = own.normal(size=(HALF_BATCH, 1)).astype("float32")
        adam_step(tf.constant(x), tf.constant(y))
    for i, w in enumerate(weights(model)):
        out[f"adam_{i}"] = w

    # --- what the trainer broadcasts: every model and optimizer variable,
    # including int64 ones (Adam's iteration, a Dropout's SeedGenerator state).
    dropout = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dropout(0.5, seed=info.rank)]
    )
    mixed = [*dropout.variables, *adam.variables]
    assert {v.dtype for v in mixed} >= {"int64", "float32"}, {v.dtype for v in mixed}
    out["seed_before_bcast"] = np.array(dropout.variables[0].numpy())
    replicas.broadcast_variables(mixed)
    for i, v in enumerate(mixed):
        out[f"mixed_{i}"] = np.array(v.numpy())

    # --- host-side scalars.
    out["mean"] = np.array(replicas.allreduce_mean(float(info.rank + 1)))
    out["max"] = np.array(replicas.allreduce_max(10.0 * info.rank + 1.0))
    replicas.barrier()

    np.savez(os.path.join(out_dir, f"rank{info.rank}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1])
