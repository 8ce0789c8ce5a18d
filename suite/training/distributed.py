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

import json
import logging
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.training.replicas import RankInfo, Replicas, SingleReplica

__all__ = [
    "HorovodReplicas",
    "RankInfo",
    "Replicas",
    "SingleReplica",
    "horovodrun_command",
    "run_ranks_on_ray",
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


def start_replicas(rendezvous_dir: str | Path | None = None) -> Replicas:
    """Horovod when a launcher started several ranks, else one plain process.

    Deciding from the environment (not by calling `hvd.init()`) keeps
    single-process runs free of Horovod, and lets them run where it is not
    installed. Inside an srun step of N > 1 tasks that no Horovod launcher set
    up, the tasks rendezvous by themselves (`setup_horovod_from_slurm`) through
    a small file in `rendezvous_dir`, which must be on a filesystem every node
    of the job sees (genbench passes the trial directory).
    """
    if _launched_size() > 1:
        return HorovodReplicas.start()
    if srun_step_size() > 1:
        rendezvous_file = setup_horovod_from_slurm(rendezvous_dir)
        replicas = HorovodReplicas.start()
        # hvd.init() returned, so every rank has read the file: it has done its job.
        if rendezvous_file is not None:
            rendezvous_file.unlink(missing_ok=True)
        return replicas
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


def run_ranks_on_ray(fn: Any, args: tuple = (), *, num_workers: int, cpus_per_worker: float = 1,
                     gpus_per_worker: float = 0, start_timeout_s: int = 60,
                     poll: Any = None, poll_interval_s: float = 1.0) -> list:
    """Run `fn(*args)` as `num_workers` Horovod ranks, one Ray actor each; rank order results.

    Uses `horovod.ray.RayExecutor` (Ray 2.60's Train V2 no longer runs HorovodTrainer).
    Called inside a Ray task or actor that holds a placement group (a Tune trial), the
    rank actors take that group's bundles; elsewhere RayExecutor reserves its own.
    Each actor finds HOROVOD_RANK/SIZE/LOCAL_* and the Gloo rendezvous in its
    environment, so `fn` calls `start_replicas()` before any TensorFlow op.
    `poll()` runs every `poll_interval_s` while the ranks work (e.g. to forward
    progress). If one rank raises or its actor dies, the others are killed (they
    would wait in a collective for ever) and the error is raised here.
    """
    import ray
    from horovod.ray import RayExecutor

    executor = RayExecutor(RayExecutor.create_settings(timeout_s=start_timeout_s),
                           num_workers=num_workers, cpus_per_worker=cpus_per_worker,
                           use_gpu=gpus_per_worker > 0, gpus_per_worker=gpus_per_worker or None)
    executor.start()
    try:
        refs = executor.run_remote(fn, args=list(args))
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=poll_interval_s)
            for ref in done:
                ray.get(ref)  # re-raises the rank's error at once
            if poll is not None:
                poll()
        return ray.get(refs)
    finally:
        # RayExecutor.shutdown drops its handles but does not stop running actors.
        for actor in getattr(getattr(executor, "adapter", None), "workers", None) or []:
            ray.kill(actor)
        executor.shutdown()


# --- Horovod under srun, without horovodrun ----------------------------------------------
#
# A Slurm job step started by `srun -n N` already has N processes on the right
# nodes; what they lack is horovodrun's rendezvous. The task with SLURM_PROCID 0
# starts Horovod's own HTTP rendezvous server (the one horovodrun runs) with
# the host plan built from the step's node list, and publishes its address in
# a file on the shared filesystem; every task reads it, sets the HOROVOD_*
# variables horovodrun would have set (Gloo controller and CPU operations),
# and `hvd.init()` rendezvous there. No MPI or PMI is involved, so it works
# with any Slurm MpiDefault and with the Gloo-only Horovod build.

RENDEZVOUS_TIMEOUT_ENV = "GENBENCH_RENDEZVOUS_TIMEOUT"  # seconds non-zero ranks wait (300)
GLOO_IFACE_ENV = "GENBENCH_GLOO_IFACE"  # network interface for Gloo (default: found by route)
_GLOO_TIMEOUT_S = "120"  # Horovod's default 30 s is short when TF imports on busy cores
_rendezvous_server: Any = None  # task 0 keeps the server alive for the whole process


def srun_step_size(env: Mapping[str, str] = os.environ) -> int:
    """Number of tasks of the srun job step this process is one of (1 outside srun).

    Only srun sets SLURM_STEP_NUM_TASKS. The batch script of `sbatch --ntasks=N`
    sees SLURM_NTASKS=N but is a single process, so SLURM_NTASKS counts only
    where a step id is set too.
    """
    value = env.get("SLURM_STEP_NUM_TASKS", "")
    if not value and env.get("SLURM_STEP_ID", "").isdigit():
        value = env.get("SLURM_NTASKS", "")
    return int(value) if value.isdigit() else 1


def expand_hostlist(text: str) -> list[str]:
    """Slurm's compressed host list, e.g. `gpu[01-03,7],login1` -> host names."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [host for item in items if item.strip() for host in _expand_host_item(item.strip())]


def _expand_host_item(item: str) -> list[str]:
    match = re.match(r"^([^\[]*)\[([^\]]+)\](.*)$", item)
    if not match:
        return [item]
    prefix, ranges, rest = match.groups()
    tails = _expand_host_item(rest) if rest else [""]
    hosts = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        for n in range(int(low), int(high or low) + 1):
            hosts.extend(f"{prefix}{n:0{len(low)}d}{tail}" for tail in tails)
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """Slurm's tasks-per-node list, e.g. `2(x3),1` -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not match:
            raise ValueError(f"cannot parse tasks per node {text!r}")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def slurm_step_plan(env: Mapping[str, str] = os.environ) -> list:
    """Horovod's host plan (one SlotInfo per rank) for the current srun step."""
    from horovod.runner.common.util.hosts import HostInfo, get_host_assignments

    nodes = expand_hostlist(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", ""))
    tasks = expand_tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE")
                                  or env.get("SLURM_TASKS_PER_NODE", ""))
    if not nodes or len(nodes) != len(tasks):
        raise RuntimeError(f"cannot match Slurm nodes {nodes} to tasks per node {tasks}")
    size = srun_step_size(env)
    if sum(tasks) != size:
        raise RuntimeError(f"Slurm tasks per node {tasks} do not add up to {size} tasks")
    return get_host_assignments([HostInfo(n, t) for n, t in zip(nodes, tasks, strict=True)], size)


def slurm_rank_env(env: Mapping[str, str], addr: str, port: int, iface: str) -> dict[str, str]:
    """The variables horovodrun would give this task, from its SLURM_* variables.

    The rank comes from the plan (this node's slot with this task's local id), so
    it agrees with the rendezvous server's scopes whatever srun's task distribution.
    """
    node = env.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
    local_id = int(env.get("SLURM_LOCALID", "0"))
    plan = slurm_step_plan(env)
    slots = [s for s in plan if s.hostname == node and s.local_rank == local_id]
    if len(slots) != 1:
        raise RuntimeError(f"node {node!r} local task {local_id} is not in the Slurm step's "
                           f"plan {[(s.hostname, s.local_rank) for s in plan]}")
    slot = slots[0]
    return {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": addr,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(port),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        "HOROVOD_GLOO_IFACE": iface,
        "HOROVOD_HOSTNAME": node,
        "HOROVOD_RANK": str(slot.rank),
        "HOROVOD_SIZE": str(slot.size),
        "HOROVOD_LOCAL_RANK": str(slot.local_rank),
        "HOROVOD_LOCAL_SIZE": str(slot.local_size),
        "HOROVOD_CROSS_RANK": str(slot.cross_rank),
        "HOROVOD_CROSS_SIZE": str(slot.cross_size),
    }


def rendezvous_file_path(directory: str | Path | None, env: Mapping[str, str] = os.environ) -> Path:
    """Where task 0 publishes host:port: one name per job, step and requeue."""
    if directory is None:
        directory = Path(env.get("SLURM_SUBMIT_DIR", ".")) / ".genbench-rendezvous"
    key = ".".join([env.get("SLURM_JOB_ID", "0"),
                    env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID", "0"),
                    env.get("SLURM_RESTART_COUNT", "0")])
    return Path(directory) / f".horovod-rendezvous-{key}.json"


def setup_horovod_from_slurm(rendezvous_dir: str | Path | None = None) -> Path | None:
    """Set this srun task's HOROVOD_* variables; task 0 starts the rendezvous server.

    Returns the rendezvous file on task 0 (to delete once `hvd.init()` is done),
    None on the other tasks.
    """
    global _rendezvous_server
    env = os.environ
    path = rendezvous_file_path(rendezvous_dir, env)
    nodes = expand_hostlist(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", ""))
    if env.get("SLURM_PROCID", "0") == "0":
        from horovod.runner.http.http_server import RendezvousServer

        server = RendezvousServer()
        port = server.start()
        server.init(slurm_step_plan(env))
        _rendezvous_server = server
        addr = "127.0.0.1" if len(set(nodes)) <= 1 else _address_towards(
            next(n for n in nodes if n != env.get("SLURMD_NODENAME")))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"addr": addr, "port": port}))
        os.replace(tmp, path)  # readers never see half a file
        written: Path | None = path
    else:
        addr, port = _wait_for_rendezvous(path)
        written = None
    iface = env.get(GLOO_IFACE_ENV) or _interface_of(_address_towards(addr))
    os.environ.update(slurm_rank_env(env, addr, port, iface))
    os.environ.setdefault("HOROVOD_GLOO_TIMEOUT_SECONDS", _GLOO_TIMEOUT_S)
    log.info("srun task %s: Horovod rendezvous at %s:%s via %s", env.get("SLURM_PROCID"),
             addr, port, iface)
    return written


def _wait_for_rendezvous(path: Path) -> tuple[str, int]:
    timeout = float(os.environ.get(RENDEZVOUS_TIMEOUT_ENV, "300"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            return str(data["addr"]), int(data["port"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.2)
    raise RuntimeError(
        f"srun task {os.environ.get('SLURM_PROCID')}: task 0 did not publish the Horovod "
        f"rendezvous in {path} within {timeout:g} s (${RENDEZVOUS_TIMEOUT_ENV}); the directory "
        "must be on a filesystem shared by all nodes of the job")


def _address_towards(host: str) -> str:
    """This host's IP address on the route to `host` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return s.getsockname()[0]


def _interface_of(address: str) -> str:
    """The network interface that holds `address` (Gloo binds to an interface)."""
    import psutil  # a Horovod dependency

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == address for a in addrs):
            return name
    raise RuntimeError(f"no network interface has address {address}; set ${GLOO_IFACE_ENV}")
