"""How a rank was started decides how it joins the others; no Horovod or TensorFlow here."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from suite.ranks.entry import (
    STARTED_ALONE,
    STARTED_BY_SPAWNER,
    STARTED_BY_SRUN,
    how_started,
    launched_size,
    start_replicas,
)
from suite.training import horovod
from suite.training.replicas import RankInfo, Replicas, SingleReplica


def test_how_a_rank_was_started() -> None:
    assert how_started({}) == STARTED_ALONE
    # A spawner (genbench's own, horovodrun, horovod.ray) or mpirun set the variables.
    assert how_started({"HOROVOD_SIZE": "2"}) == STARTED_BY_SPAWNER
    assert how_started({"OMPI_COMM_WORLD_SIZE": "4"}) == STARTED_BY_SPAWNER
    # ... even inside an srun step: the spawner's variables win.
    assert how_started({"HOROVOD_SIZE": "2", "SLURM_STEP_NUM_TASKS": "1"}) == STARTED_BY_SPAWNER
    assert how_started({"SLURM_STEP_NUM_TASKS": "2"}) == STARTED_BY_SRUN
    # One process: a size of 1, an srun step of 1, the batch script of sbatch -n 4.
    assert how_started({"HOROVOD_SIZE": "1"}) == STARTED_ALONE
    assert how_started({"SLURM_STEP_NUM_TASKS": "1"}) == STARTED_ALONE
    assert how_started({"SLURM_NTASKS": "4", "SLURM_JOB_ID": "3"}) == STARTED_ALONE
    assert launched_size({"PMI_SIZE": "3"}) == 3


def test_single_process_gets_single_replica_without_horovod() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replicas = start_replicas(env={"SLURM_NTASKS": "4", "SLURM_JOB_ID": "3"})
    assert isinstance(replicas, SingleReplica)
    assert isinstance(replicas, Replicas)
    assert "horovod.tensorflow" not in sys.modules


def test_single_replica_is_identity() -> None:
    replicas = SingleReplica()
    assert replicas.info == RankInfo(rank=0, size=1, local_rank=0, local_size=1)
    grads = [1.0, None, 3.0]
    assert replicas.average_gradients(grads) == grads
    assert replicas.allreduce_mean(2.5) == 2.5
    assert replicas.allreduce_max(-1.0) == -1.0
    replicas.broadcast_variables([object()])
    replicas.barrier()


def test_threads_split_cores_unless_srun_gave_each_rank_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = len(os.sched_getaffinity(0))
    two = RankInfo(rank=1, size=2, local_rank=1, local_size=2)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    monkeypatch.delenv("GENBENCH_RANK_CORES", raising=False)
    assert horovod._threads_per_rank(two) == max(1, cores // 2)
    # Local ranks inside an sbatch job: the one batch task's share is not per rank.
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert horovod._threads_per_rank(two) == max(1, cores // 2)
    # srun -n 2 --cpus-per-task 8: each rank has its own 8.
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert horovod._threads_per_rank(two) == 8


def test_a_bound_rank_uses_its_whole_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local launcher bound the rank to 3 cores and says so: its affinity is
    already the share, not to be split again among the local ranks."""
    two = RankInfo(rank=0, size=2, local_rank=0, local_size=2)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    monkeypatch.setenv("GENBENCH_RANK_CORES", "3")
    assert horovod._threads_per_rank(two) == 3
