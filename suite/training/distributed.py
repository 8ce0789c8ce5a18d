"""Horovod data parallelism: the only module in genbench that imports Horovod.

Horovod (and TensorFlow) are imported lazily, inside `HorovodReplicas.start`,
so that launchers can import this module to build a `horovodrun` command line
without paying for a TensorFlow import, and single-process runs work where
Horovod is not installed (`tools/install-horovod.sh` installs it).

Gradients are averaged with `hvd.grouped_allreduce` on a plain
`tf.GradientTape`'s output: `hvd.DistributedGradientTape` fails with Keras 3
variables (`'Variable' object has no attribute 'ref'`), see DESIGN.md.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from suite.training.replicas import RankInfo, Replicas, SingleReplica

__all__ = [
    "HorovodReplicas",
    "RankInfo",
    "Replicas",
    "SingleReplica",
    "horovodrun_command",
    "start_replicas",
]

log = logging.getLogger(__name__)

# Set by horovodrun (Gloo) and by genbench's srun glue; mpirun sets the others.
_SIZE_ENV_VARS = ("HOROVOD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


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
        """One grouped allreduce (fused by Horovod) over all non-None gradients.

        `None` gradients are structural (the same on every rank, since every rank
        traces the same step), so leaving them out keeps ranks in step.
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

    def barrier(self) -> None:
        """A tiny allreduce: it completes only once every rank has contributed.

        `horovod.tensorflow` 0.28 has no `barrier()` (only the PyTorch API does).
        """
        self._allreduce_scalar(0.0, self._hvd.Sum)

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
    rank's share. Otherwise (horovodrun, even inside an sbatch job whose one
    task has all the job's cores) the cores this process may run on (its
    affinity, which honours cpusets) are split evenly among the local ranks.
    """
    slurm_share = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm_share.isdigit() and os.environ.get("SLURM_STEP_NUM_TASKS") == str(info.size):
        return max(1, int(slurm_share))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_size))


def _launched_size() -> int:
    """Number of ranks the launcher started, from its environment (1 if none)."""
    for name in _SIZE_ENV_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def start_replicas() -> Replicas:
    """Horovod when a launcher started several ranks, else one plain process.

    Deciding from the environment (not by calling `hvd.init()`) keeps
    single-process runs free of Horovod, and lets them run where it is not
    installed.
    """
    if _launched_size() > 1:
        return HorovodReplicas.start()
    slurm_tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "1")
    if slurm_tasks.isdigit() and int(slurm_tasks) > 1:
        warnings.warn(
            f"srun started {slurm_tasks} tasks but no Horovod rendezvous was set up "
            "(HOROVOD_SIZE is unset): each task trains alone",
            RuntimeWarning,
            stacklevel=2,
        )
    return SingleReplica()


def horovodrun_command(num_ranks: int, argv: list[str], timeline: str | None = None) -> list[str]:
    """`horovodrun` command line running `argv` as `num_ranks` Gloo ranks on this host.

    `argv` is the full worker command, e.g. `[sys.executable, "-m", "suite.worker", ...]`.
    `timeline` names a Horovod timeline file (Chrome trace of every collective).
    The `horovodrun` installed next to `sys.executable` is used, so the ranks run
    in the same environment as the caller.
    """
    if num_ranks < 1:
        raise ValueError(f"num_ranks must be >= 1, got {num_ranks}")
    if not argv:
        raise ValueError("argv must name the command each rank runs")
    cmd = [_horovodrun_path(), "--gloo", "-np", str(num_ranks), "-H", f"localhost:{num_ranks}"]
    if timeline is not None:
        cmd += ["--timeline-filename", str(timeline)]
    return cmd + list(argv)


def _horovodrun_path() -> str:
    """The console script of the Horovod installed with this interpreter."""
    beside = Path(sys.executable).parent / "horovodrun"
    if beside.exists():
        return str(beside)
    found = shutil.which("horovodrun")
    if found:
        return found
    raise FileNotFoundError(
        f"horovodrun not found next to {sys.executable} nor on PATH\n"
        f"  fix: tools/install-horovod.sh {sys.executable}"
    )
