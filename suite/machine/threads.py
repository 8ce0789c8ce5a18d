"""TensorFlow's thread pools, sized from the environment a launcher sets for a rank."""

from __future__ import annotations

import os

THREADS_ENV = "GENBENCH_INTRA_OP_THREADS"
# Set by a launcher that bound a rank to its own cores: how many (the rank's whole share).
RANK_CORES_ENV = "GENBENCH_RANK_CORES"


def configure_threads_from_env() -> None:
    """Pin TensorFlow's intra-op pool to $GENBENCH_INTRA_OP_THREADS (benchmarks use 1).

    Must run before TensorFlow executes its first op; a no-op when unset.
    """
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
