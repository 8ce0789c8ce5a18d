"""Horovod data parallelism: the only module in genbench that imports Horovod.

Horovod (and TensorFlow) are imported lazily, inside the functions that need
them, so that importing this module costs nothing and single-process runs work
where Horovod is not installed (`tools/install-horovod.sh` installs it). Which
ranks exist and how they were started is decided by the launcher side
(`suite.ranks`, `suite.launchers.ray_ranks`); this module only joins them.

Gradients are averaged with `hvd.grouped_allreduce` on a plain
`tf.GradientTape`'s output: `hvd.DistributedGradientTape` fails with Keras 3
variables (`'Variable' object has no attribute 'ref'`);
docs/horovod.md has the measurements.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

from suite.machine.threads import RANK_CORES_ENV
from suite.training.replicas import RankInfo

log = logging.getLogger(__name__)

# The rendezvous servers this process runs, by port: alive until stopped or the process ends.
_rendezvous_servers: dict[int, Any] = {}


class HorovodReplicas:
    """`Replicas` over Horovod collectives (Gloo on CPU, NCCL/MPI where built)."""

    def __init__(self, hvd: Any, info: RankInfo) -> None:
        """Use `HorovodReplicas.start()`: it initialises Horovod and TensorFlow first."""
        self._hvd = hvd
        self.info = info

    @classmethod
    def start(cls) -> HorovodReplicas:
        """Initialise Horovod and give this rank its share of the host.

        Must run before TensorFlow initialises its runtime (before the first op,
        model or dataset is created): device visibility and thread-pool sizes
        are fixed at that moment, and TF raises if they are changed later.
        """
        import horovod.tensorflow as hvd

        hvd.init()
        info = RankInfo(
            rank=hvd.rank(),
            size=hvd.size(),
            local_rank=hvd.local_rank(),
            local_size=hvd.local_size(),
        )
        _configure_tensorflow(info)
        log.info(
            "horovod rank %d of %d (local %d of %d)",
            info.rank,
            info.size,
            info.local_rank,
            info.local_size,
        )
        return cls(hvd, info)

    def average_gradients(self, grads: list) -> list:
        """One grouped allreduce (fused by Horovod) over all non-None tensors.

        The trainer passes every network's gradients and the step's losses at
        once, so a step costs one collective. `None` gradients are structural
        (the same on every rank, since every rank traces the same step), so
        leaving them out keeps ranks in step.
        """
        present = [i for i, g in enumerate(grads) if g is not None]
        if not present:
            return list(grads)
        reduced = self._hvd.grouped_allreduce([grads[i] for i in present], op=self._hvd.Average)
        out = list(grads)
        for i, g in zip(present, reduced, strict=True):
            out[i] = g
        return out

    def broadcast_variables(self, variables: list) -> None:
        """Assign rank 0's value to each variable, one eager broadcast per variable.

        Works on Keras 3 variables via their backing `tf.Variable` (`v.value`),
        and on plain `tf.Variable`s; Horovod's own `broadcast_variables` only
        knows the latter.
        """
        import keras

        for v in variables:
            # A keras.Variable's `.value` is its tf.Variable; a tf.Variable is one.
            source = v.value if isinstance(v, keras.Variable) else v
            v.assign(self._hvd.broadcast(source, root_rank=0))

    def allreduce_mean(self, value: float) -> float:
        """Mean in float64 so logged losses do not lose digits to the reduction."""
        return self._allreduce_scalar(value, self._hvd.Average)

    def allreduce_max(self, value: float) -> float:
        """Max in float64: e.g. the slowest rank's step time is the job's step time."""
        return self._allreduce_scalar(value, self._hvd.Max)

    def allreduce_max_many(self, values: Sequence[float]) -> list[float]:
        """One float64 vector allreduce (max) for all values, not one collective each."""
        import tensorflow as tf

        if not values:
            return []
        tensor = tf.constant([float(v) for v in values], dtype=tf.float64)
        return [float(v) for v in self._hvd.allreduce(tensor, op=self._hvd.Max).numpy()]

    def barrier(self) -> None:
        """A tiny allreduce: it completes only once every rank has contributed.

        `horovod.tensorflow` 0.28 has no `barrier()` (only the PyTorch API does).
        """
        self._allreduce_scalar(0.0, self._hvd.Sum)

    def allgather_hostnames(self) -> list[str]:
        """One object allgather (eager): each rank's `socket.gethostname()`, rank order."""
        return [str(h) for h in self._hvd.allgather_object(socket.gethostname())]

    def _allreduce_scalar(self, value: float, op: Any) -> float:
        import tensorflow as tf

        tensor = tf.constant(float(value), dtype=tf.float64)
        return float(self._hvd.allreduce(tensor, op=op).numpy())


def _configure_tensorflow(info: RankInfo) -> None:
    """Pin one GPU per local rank, or split the CPU cores among local ranks."""
    import tensorflow as tf

    try:
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            # Modulo: more ranks than GPUs share them (memory growth makes that work).
            gpu = gpus[info.local_rank % len(gpus)]
            tf.config.set_visible_devices(gpu, "GPU")
            tf.config.experimental.set_memory_growth(gpu, True)
        threads = _threads_per_rank(info)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # One inter-op thread per few cores: more only oversubscribes the host.
        tf.config.threading.set_inter_op_parallelism_threads(2 if threads >= 4 else 1)
    except RuntimeError as e:
        raise RuntimeError(
            "start_replicas() must be called before TensorFlow creates any op, model or "
            f"dataset (TF said: {e})"
        ) from e


def _threads_per_rank(info: RankInfo) -> int:
    """Cores this rank may use without oversubscribing the host.

    When srun started exactly these ranks, `--cpus-per-task` already is each
    rank's share, as are the cores genbench's local launcher bound the rank to.
    Otherwise (local ranks, even inside an sbatch job whose one
    task has all the job's cores) the cores this process may run on (its
    affinity, which honours cpusets) are split evenly among the local ranks.
    """
    slurm_share = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm_share.isdigit() and os.environ.get("SLURM_STEP_NUM_TASKS") == str(info.size):
        return max(1, int(slurm_share))
    bound = os.environ.get(RANK_CORES_ENV, "")
    if bound.isdigit():  # the launcher bound this rank to its share (launchers.core_binding)
        return max(1, int(bound))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_size))


def start_rendezvous(host_slots: Sequence[Any], bind_address: str) -> int:
    """Start Horovod's Gloo rendezvous server on `bind_address` only; return its port.

    `host_slots` is the plan, one slot per rank (fields of Horovod's SlotInfo:
    hostname, rank, local_rank, cross_rank, size, local_size, cross_size).
    Horovod's own `RendezvousServer.start()` listens on every interface; this
    builds the same server on one address (127.0.0.1 for ranks on this host).
    The server runs in a daemon thread for the rest of the process, or until
    `stop_rendezvous(port)`.
    """
    from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer

    server = RendezvousHTTPServer((bind_address, 0), RendezvousHandler, 0)
    server.init(list(host_slots))
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name=f"rendezvous-{port}",
                              daemon=True)
    thread.start()
    _rendezvous_servers[port] = (server, thread)
    log.info("Horovod rendezvous on %s:%d for %d ranks", bind_address, port, len(host_slots))
    return port


def stop_rendezvous(port: int) -> None:
    """Stop a server `start_rendezvous` started (no-op if there is none on `port`)."""
    entry = _rendezvous_servers.pop(port, None)
    if entry is not None:
        server, thread = entry
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
