"""What a result row records about the machine and software that produced it."""

from __future__ import annotations

import functools
import os
import platform
import socket

import suite
from suite.store import schema


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_device() -> str:
    """The `device` column of a row trained on this machine's CPU (no TensorFlow needed)."""
    return f"cpu: {_cpu_name()} x{os.cpu_count()}"


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
        device = cpu_device()
    return {
        schema.HOSTNAME: socket.gethostname(),
        schema.DEVICE: device,
        schema.TF_VERSION: tf.__version__,
        schema.KERAS_VERSION: keras.__version__,
        schema.GENBENCH_VERSION: suite.__version__,
        schema.PYTHON_VERSION: platform.python_version(),
    }
