"""Data parallelism: real Horovod on 2 Gloo ranks on this host, plus the cheap parts in-process.

The 2-rank checks run in ONE `horovodrun` launch (tests/_hvd_scripts/replica_checks.py)
because each rank pays a few seconds of TensorFlow import; the tests below
read what each rank wrote.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from suite.training import distributed
from suite.training.distributed import horovodrun_command, start_replicas
from suite.training.replicas import RankInfo, Replicas, SingleReplica

REPO = Path(__file__).resolve().parents[2]
CHECKS = REPO / "tests" / "integration" / "_hvd_scripts" / "replica_checks.py"
ATOL = 1e-5

needs_horovod = pytest.mark.skipif(
    importlib.util.find_spec("horovod") is None,
    reason="Horovod is not installed: run tools/install-horovod.sh .venv/bin/python",
)


def _weights(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The arrays saved as PREFIX_0, PREFIX_1, ... (one per model variable), in order."""
    pattern = re.compile(re.escape(prefix) + r"_(\d+)")
    numbered = {int(m[1]): k for k in arrays if (m := pattern.fullmatch(k))}
    keys = [numbered[i] for i in sorted(numbered)]
    assert keys, f"no arrays named {prefix}_*"
    return [arrays[k] for k in keys]


def _assert_close(a: list[np.ndarray], b: list[np.ndarray], atol: float = ATOL) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """Run the checks once on 2 ranks; return each rank's arrays and the timeline path."""
    out = tmp_path_factory.mktemp("hvd")
    timeline = out / "timeline.json"
    cmd = horovodrun_command(2, [sys.executable, str(CHECKS), str(out)], timeline=str(timeline))
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"horovodrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    return ranks[0], ranks[1], timeline


@needs_horovod
def test_rank_info_and_threads(two_ranks: tuple[dict, dict, Path]) -> None:
    r0, r1, _ = two_ranks
    assert r0["info"].tolist() == [0, 2, 0, 2]
    assert r1["info"].tolist() == [1, 2, 1, 2]
    # The host's cores are split between the 2 local ranks.
    for r in (r0, r1):
        assert int(r["intra_op_threads"]) == max(1, int(r["cores"]) // 2)


@needs_horovod
def test_broadcast_makes_rank0_weights_everyones(two_ranks: tuple[dict, dict, Path]) -> None:
    r0, r1 = two_ranks[0], two_ranks[1]
    before0, before1 = _weights(r0, "init_before_bcast"), _weights(r1, "init_before_bcast")
    assert not np.allclose(before0[0], before1[0]), "ranks should start from different seeds"
    _assert_close(_weights(r0, "init_after_bcast"), before0, atol=0)
    _assert_close(_weights(r1, "init_after_bcast"), before0, atol=0)


@needs_horovod
def test_two_half_batches_equal_one_full_batch(two_ranks: tuple[dict, dict, Path]) -> None:
    r0, r1 = two_ranks[0], two_ranks[1]
    full, half = _weights(r0, "ref_full"), _weights(r0, "ref_half")
    _assert_close(_weights(r0, "sgd"), full)
    _assert_close(_weights(r1, "sgd"), full)
    # Averaging, not merely syncing: rank 0's own half-batch step lands elsewhere.
    assert max(np.abs(a - b).max() for a, b in zip(full, half, strict=True)) > 100 * ATOL


@needs_horovod
def test_ranks_stay_identical_after_adam_steps_on_different_data(
    two_ranks: tuple[dict, dict, Path],
) -> None:
    r0, r1 = two_ranks[0], two_ranks[1]
    adam0, adam1 = _weights(r0, "adam"), _weights(r1, "adam")
    _assert_close(adam0, adam1, atol=0)
    assert max(np.abs(a - b).max() for a, b in zip(adam0, _weights(r0, "sgd"), strict=True)) > 1e-4


@needs_horovod
def test_broadcast_handles_int64_and_optimizer_variables(
    two_ranks: tuple[dict, dict, Path],
) -> None:
    r0, r1 = two_ranks[0], two_ranks[1]
    mixed0, mixed1 = _weights(r0, "mixed"), _weights(r1, "mixed")
    assert {a.dtype.name for a in mixed0} >= {"int64", "float32"}
    assert not np.array_equal(r0["seed_before_bcast"], r1["seed_before_bcast"])
    for a, b in zip(mixed0, mixed1, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_horovod
def test_host_scalars_are_reduced(two_ranks: tuple[dict, dict, Path]) -> None:
    for r in two_ranks[:2]:
        assert float(r["mean"]) == pytest.approx(1.5)  # mean of 1 and 2
        assert float(r["max"]) == pytest.approx(11.0)  # max of 1 and 11


@needs_horovod
def test_timeline_is_written(two_ranks: tuple[dict, dict, Path]) -> None:
    timeline = two_ranks[2]
    assert timeline.exists() and "ALLREDUCE" in timeline.read_text().upper()


def test_horovodrun_command_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real lookup runs in the two_ranks fixture; this one needs no Horovod.
    monkeypatch.setattr(distributed, "_horovodrun_path", lambda: "/venv/bin/horovodrun")
    argv = [sys.executable, "-m", "suite.worker", "--trial", "t.json"]
    cmd = horovodrun_command(3, argv, timeline="/tmp/tl.json")
    assert Path(cmd[0]).name == "horovodrun"
    assert cmd[1:6] == ["--gloo", "-np", "3", "-H", "localhost:3"]
    assert cmd[6:8] == ["--timeline-filename", "/tmp/tl.json"]
    assert cmd[8:] == argv
    assert "--timeline-filename" not in horovodrun_command(1, argv)
    with pytest.raises(ValueError):
        horovodrun_command(0, argv)


def test_single_process_gets_single_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOROVOD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replicas = start_replicas()
    assert isinstance(replicas, SingleReplica)
    assert isinstance(replicas, Replicas)


def test_single_replica_is_identity() -> None:
    replicas = SingleReplica()
    assert replicas.info == RankInfo(rank=0, size=1, local_rank=0, local_size=1)
    assert replicas.info.is_root
    grads = [1.0, None, 3.0]
    assert replicas.average_gradients(grads) == grads
    assert replicas.allreduce_mean(2.5) == 2.5
    assert replicas.allreduce_max(-1.0) == -1.0
    replicas.broadcast_variables([object()])
    replicas.barrier()


@needs_horovod
def test_start_after_tensorflow_runtime_is_a_clear_error() -> None:
    # Thread pools are fixed when TF runs its first op; start() must come first.
    code = (
        "import tensorflow as tf; tf.constant(1.0) + 1\n"
        "from suite.training.distributed import HorovodReplicas\n"
        "HorovodReplicas.start()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    for name in ("HOROVOD_SIZE", "HOROVOD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "must be called before TensorFlow creates any op" in proc.stderr


def test_threads_split_cores_unless_srun_gave_each_rank_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = len(os.sched_getaffinity(0))
    two = RankInfo(rank=1, size=2, local_rank=1, local_size=2)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert distributed._threads_per_rank(two) == max(1, cores // 2)
    # horovodrun inside an sbatch job: the one batch task's share is not per rank.
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert distributed._threads_per_rank(two) == max(1, cores // 2)
    # srun -n 2 --cpus-per-task 8: each rank has its own 8.
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert distributed._threads_per_rank(two) == 8
