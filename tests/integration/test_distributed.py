"""Data parallelism: real Horovod on 2 Gloo ranks on this host.

The 2-rank checks run in ONE launch of genbench's own spawner
(suite.ranks.local, no horovodrun) of tests/_hvd_scripts/replica_checks.py,
because each rank pays a few seconds of TensorFlow import; the tests below
read what each rank wrote. The cheap, pure parts are in tests/unit/test_rank_start.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from suite.ranks.local import run_local_command

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
    log = out / "ranks.log"
    code = run_local_command([sys.executable, str(CHECKS), str(out)], 2, log, timeline=timeline)
    assert code == 0, f"the ranks failed:\n{log.read_text()[-4000:]}"
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


@needs_horovod
def test_start_after_tensorflow_runtime_is_a_clear_error() -> None:
    # Thread pools are fixed when TF runs its first op; start() must come first.
    code = (
        "import tensorflow as tf; tf.constant(1.0) + 1\n"
        "from suite.training.horovod import HorovodReplicas\n"
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
