"""What a result row records about the machine and software that produced it."""

from __future__ import annotations

import functools
import os
import platform
import socket
from datetime import UTC, datetime

import suite
from suite import schema


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def describe_environment() -> dict[str, str]:
    """Host, device and versions; cached because it does not change within a process."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                   for g in gpus]
        device = f"gpu: {details[0]} x{len(gpus)}"
    else:
        device = f"cpu: {_cpu_name()} x{os.cpu_count()}"
    return {
        schema.HOSTNAME: socket.gethostname(),
        schema.DEVICE: device,
        schema.TF_VERSION: tf.__version__,
        schema.KERAS_VERSION: keras.__version__,
        schema.GENBENCH_VERSION: suite.__version__,
        schema.PYTHON_VERSION: platform.python_version(),
    }


def usable_cores() -> int:
    """Cores this process may run on (its affinity honours cpusets and Slurm allocations)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
