"""The program every Horovod rank runs: `python -m suite.ranks.entry LAUNCH_JSON`.

A launcher writes the trial and its run context to LAUNCH_JSON, starts N
copies of this module (local processes, an srun step, or Ray actors calling
`run_rank`), and reads the outcome back from the results store. How this
process was started decides how it joins the others (`start_replicas`), before
TensorFlow initialises, as Horovod's device and thread pinning requires.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from suite.common.errors import GenbenchError
from suite.machine.threads import configure_threads_from_env
from suite.ranks import slurm_env
from suite.ranks.core_binding import describe_cores
from suite.ranks.network import check_rank_network, choose_interface, host_name
from suite.sweep.spec import Trial
from suite.training.replicas import Replicas, SingleReplica
from suite.trial.context import RunContext, TrialResult

LAUNCH_FILE = "launch.json"
# Set by genbench's spawners, horovodrun and horovod.ray (Gloo); mpirun sets the others.
SIZE_ENV_VARS = ("HOROVOD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
STARTED_BY_SPAWNER = "spawner"  # HOROVOD_* (or MPI) variables are already set
STARTED_BY_SRUN = "srun"  # a task of an srun step of N > 1 tasks: rendezvous by file
STARTED_ALONE = "single"  # one plain process

log = logging.getLogger(__name__)


def write_launch_file(path: Path, trial: Trial, ctx: RunContext) -> None:
    context = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(ctx).items()}
    path.write_text(json.dumps({"trial": json.loads(trial.to_json()), "context": context},
                               indent=2, sort_keys=True))


def read_launch_file(path: Path) -> tuple[Trial, RunContext]:
    data = json.loads(Path(path).read_text())
    trial = Trial.from_json(json.dumps(data["trial"]))
    context = dict(data["context"])
    context["out"] = Path(context["out"])
    return trial, RunContext(**context)


def launched_size(env: Mapping[str, str]) -> int:
    """Number of ranks a spawner started with this process, from its variables (1 if none)."""
    for name in SIZE_ENV_VARS:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def how_started(env: Mapping[str, str]) -> str:
    """How this rank was started: STARTED_BY_SPAWNER, STARTED_BY_SRUN or STARTED_ALONE.

    Deciding from the environment (not by calling `hvd.init()`) keeps
    single-process runs free of Horovod, and lets them run where it is not installed.
    """
    if launched_size(env) > 1:
        return STARTED_BY_SPAWNER
    if slurm_env.srun_step_size(env) > 1:
        return STARTED_BY_SRUN
    return STARTED_ALONE


def start_replicas(rendezvous_dir: str | Path | None = None,
                   env: MutableMapping[str, str] = os.environ) -> Replicas:
    """Horovod when several ranks were started, else one plain process; before any TF op.

    Inside an srun step of N > 1 tasks that no spawner set up, the tasks
    rendezvous by themselves through a small file in `rendezvous_dir`, which must
    be on a filesystem every node of the job sees (genbench passes the trial directory).
    """
    how = how_started(env)
    if how == STARTED_ALONE:
        return SingleReplica()
    from suite.training.horovod import HorovodReplicas

    if how == STARTED_BY_SPAWNER:
        check_rank_network(host_name(), env.get("HOROVOD_GLOO_IFACE", ""))
        return HorovodReplicas.start()
    published = join_srun_step(rendezvous_dir, env)
    check_rank_network(host_name(), env.get("HOROVOD_GLOO_IFACE", ""))
    replicas = HorovodReplicas.start()
    # hvd.init() returned, so every rank has read the file: it has done its job.
    if published is not None:
        published.unlink(missing_ok=True)
    return replicas


def join_srun_step(rendezvous_dir: str | Path | None,
                   env: MutableMapping[str, str]) -> Path | None:
    """Set this srun task's HOROVOD_* variables; task 0 starts and publishes the rendezvous.

    Returns the rendezvous file on task 0 (to delete once `hvd.init()` is done),
    None on the other tasks.
    """
    path = slurm_env.rendezvous_file_path(rendezvous_dir, env)
    published: Path | None = None
    if env.get("SLURM_PROCID", "0") == "0":
        from suite.training.horovod import start_rendezvous

        addr = slurm_env.rendezvous_address(env)
        port = start_rendezvous(slurm_env.step_plan(env), bind_address=addr)
        slurm_env.publish_rendezvous(path, addr, port)
        published = path
    else:
        addr, port = slurm_env.wait_for_rendezvous(path, slurm_env.rendezvous_timeout(env))
    iface = choose_interface(addr, env)
    env.update(slurm_env.slurm_rank_env(env, addr, port, iface))
    log.info("srun task %s: Horovod rendezvous at %s:%s via %s", env.get("SLURM_PROCID"),
             addr, port, iface)
    return published


def run_rank(trial: Trial, ctx: RunContext) -> TrialResult:
    """Run this process's rank of `trial`: replicas from the environment (a spawner's
    variables, or an srun step's), then the trial; prints the rank's outcome line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from suite.store.results import trial_dir

    # Before any TensorFlow op. Under srun the ranks rendezvous through a file
    # in the trial directory, which every node of the job sees.
    try:
        replicas = start_replicas(rendezvous_dir=trial_dir(ctx.out, trial.sweep, trial.trial_id))
    except GenbenchError as e:  # e.g. this host's network would crash Gloo
        return record_start_failure(trial, ctx, str(e))
    configure_threads_from_env()
    if replicas.info.size > 1:
        print(describe_placement(replicas.info.rank, replicas.info.size), flush=True)
    from suite.trial.run import run_trial

    result = run_trial(trial, ctx, replicas=replicas)
    if result.status == "failed" and replicas.info.rank == 0 and result.error:
        result = name_lost_hosts(trial, ctx, result)
    print(f"rank {replicas.info.rank}/{replicas.info.size}: trial {trial.trial_id} {result.status}"
          f" weights={result.weights_digest or '-'}"
          + (f": {result.error}" if result.error else ""), flush=True)
    return result


def describe_placement(rank: int, size: int, env: Mapping[str, str] = os.environ) -> str:
    """One line saying where this rank runs and how it reaches the others (its log's
    first line; the multi-node tests read it): host, local rank, cores, rendezvous, interface."""
    cores = describe_cores(sorted(os.sched_getaffinity(0)))
    return (f"rank {rank}/{size} placement: host={host_name()} "
            f"local_rank={env.get('HOROVOD_LOCAL_RANK', '?')}/{env.get('HOROVOD_LOCAL_SIZE', '?')} "
            f"cross_rank={env.get('HOROVOD_CROSS_RANK', '?')}/{env.get('HOROVOD_CROSS_SIZE', '?')} "
            f"cores={cores} rendezvous={env.get('HOROVOD_GLOO_RENDEZVOUS_ADDR', '?')}:"
            f"{env.get('HOROVOD_GLOO_RENDEZVOUS_PORT', '?')} "
            f"iface={env.get('HOROVOD_GLOO_IFACE') or '-'}")


def name_lost_hosts(trial: Trial, ctx: RunContext, result: TrialResult) -> TrialResult:
    """Put the lost hosts' names in the failed row when a peer's node went away mid-trial
    (an srun step over several hosts): Horovod's own message names no host."""
    message = slurm_env.lost_peer_message(result.error or "", os.environ) \
        if slurm_env.srun_step_size(os.environ) > 1 else None
    if message is None:
        return result
    from suite.store import schema
    from suite.store.trial_store import TrialStore

    store = TrialStore.of(ctx.out, trial)
    rows = store.rows()
    if rows and rows[-1].get(schema.STATUS) == schema.STATUS_FAILED:
        rows[-1] = {**rows[-1], schema.ERROR: message}
        store.write_rows(rows)
    return dataclasses.replace(result, error=message)


def record_start_failure(trial: Trial, ctx: RunContext, message: str) -> TrialResult:
    """Record why this rank could not start as the trial's failure (no rank holds the
    lease yet: none has passed hvd.init()), unless another process is training it."""
    from suite.store import schema
    from suite.store.trial_store import TrialStore
    from suite.trial.columns import config_columns

    store = TrialStore.of(ctx.out, trial)
    if store.lease().live_holder() is None:
        store.directory.mkdir(parents=True, exist_ok=True)
        store.record_failure(config_columns(trial), message, message)
    print(f"rank {os.environ.get('HOROVOD_RANK', '?')}: trial {trial.trial_id} failed: "
          f"{message}", flush=True)
    return TrialResult(trial.trial_id, schema.STATUS_FAILED, error=message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m suite.ranks.entry LAUNCH_JSON", file=sys.stderr)
        return 2
    trial, ctx = read_launch_file(Path(argv[0]))
    result = run_rank(trial, ctx)
    # A failed rank exits non-zero so that the spawner (or srun) stops the others.
    return 1 if result.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
