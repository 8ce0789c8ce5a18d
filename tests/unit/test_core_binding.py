"""Local ranks bound to their own cores (suite.ranks.core_binding), with real
processes: each rank reports the cores the kernel lets it run on."""

from __future__ import annotations

import json
import os
import sys

import pytest

from suite.common.errors import SpecError
from suite.launchers.local import LocalOptions
from suite.ranks.children import ChildGroup
from suite.ranks.core_binding import describe_cores, split_cores

REPORT_AFFINITY = ("import json, os, threading; out = {}; "
                   "t = threading.Thread(target=lambda: "
                   "out.update(t=sorted(os.sched_getaffinity(0)))); "
                   "t.start(); t.join(); print(json.dumps({'rank': os.environ['HOROVOD_RANK'], "
                   "'main': sorted(os.sched_getaffinity(0)), 'thread': out['t'], "
                   "'share': os.environ.get('GENBENCH_RANK_CORES')}))")


@pytest.mark.parametrize("cores, ranks, blocks", [
    ([0, 1], 2, [(0,), (1,)]),
    ([0, 1, 2, 3], 2, [(0, 1), (2, 3)]),
    ([0, 1, 2], 2, [(0,), (1,)]),  # equal shares; the odd core stays free
    ([3, 0, 2, 1], 4, [(0,), (1,), (2,), (3,)]),
    ([2, 5, 7, 9], 2, [(2, 5), (7, 9)]),  # a cpuset with holes
    ([0, 1, 2, 3, 4, 5, 6, 7], 3, [(0, 1), (2, 3), (4, 5)]),
    ([0], 1, [(0,)]),
])
def test_split_cores_gives_equal_disjoint_blocks(cores, ranks, blocks) -> None:
    assert split_cores(cores, ranks) == blocks


@pytest.mark.parametrize("cores, ranks", [([0], 2), ([0, 1, 2], 4), ([], 1)])
def test_split_cores_refuses_to_stack_ranks_on_a_core(cores, ranks) -> None:
    assert split_cores(cores, ranks) is None


def test_split_cores_rejects_no_ranks() -> None:
    with pytest.raises(ValueError, match="ranks"):
        split_cores([0, 1], 0)


@pytest.mark.parametrize("cores, text", [([0, 1, 2, 3], "0-3"), ([5, 2], "2,5"), ([4], "4")])
def test_describe_cores_as_taskset_writes_them(cores, text) -> None:
    assert describe_cores(cores) == text


def test_a_child_and_its_threads_run_on_the_cores_given(tmp_path) -> None:
    core = sorted(os.sched_getaffinity(0))[-1]
    env = {**os.environ, "HOROVOD_RANK": "0"}
    with open(tmp_path / "log", "ab") as log, ChildGroup(log) as group:
        group.start([sys.executable, "-c", REPORT_AFFINITY], env, cpus={core})
        group.start([sys.executable, "-c", REPORT_AFFINITY], env)
        assert group.wait() == 0
    bound, free = (json.loads(line) for line in (tmp_path / "log").read_text().splitlines())
    if bound["main"] != [core]:  # the two children may print in either order
        bound, free = free, bound
    assert bound["main"] == bound["thread"] == [core]
    assert free["main"] == sorted(os.sched_getaffinity(0))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
@pytest.mark.parametrize("bind", [True, False])
def test_local_ranks_get_disjoint_cores_unless_told_not_to(tmp_path, bind) -> None:
    from suite.ranks.local import run_local_command

    log = tmp_path / "log"
    assert run_local_command([sys.executable, "-c", REPORT_AFFINITY], 2, log, bind=bind) == 0
    ranks = sorted((json.loads(line) for line in log.read_text().splitlines()),
                   key=lambda r: r["rank"])
    mine = sorted(os.sched_getaffinity(0))
    if bind:
        share = len(mine) // 2
        assert [r["main"] for r in ranks] == [mine[:share], mine[share:2 * share]]
        assert all(r["thread"] == r["main"] and r["share"] == str(share) for r in ranks)
    else:
        assert all(r["main"] == mine and r["share"] is None for r in ranks)


def test_bind_option_names_its_choices() -> None:
    assert LocalOptions().bind == "cores"
    with pytest.raises(SpecError, match="cores, none"):
        LocalOptions(bind="numa")


def test_tuning_variables_reach_the_ranks_but_a_stale_place_does_not(
    tmp_path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As with horovodrun: HOROVOD_CYCLE_TIME and friends pass through; the launcher's
    own rank, size or timeline (e.g. it runs inside another job's rank) never do."""
    from suite.ranks.local import run_local_command

    monkeypatch.setenv("HOROVOD_CYCLE_TIME", "7")
    monkeypatch.setenv("HOROVOD_FUSION_THRESHOLD", "1048576")
    monkeypatch.setenv("HOROVOD_RANK", "5")
    monkeypatch.setenv("HOROVOD_SIZE", "9")
    monkeypatch.setenv("HOROVOD_TIMELINE", str(tmp_path / "stale.json"))
    script = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in ("
              "'HOROVOD_CYCLE_TIME', 'HOROVOD_FUSION_THRESHOLD', 'HOROVOD_RANK', "
              "'HOROVOD_SIZE', 'HOROVOD_TIMELINE')}))")
    log = tmp_path / "log"
    assert run_local_command([sys.executable, "-c", script], 2, log) == 0
    seen = sorted((json.loads(line) for line in log.read_text().splitlines()),
                  key=lambda r: r["HOROVOD_RANK"])
    assert [r["HOROVOD_RANK"] for r in seen] == ["0", "1"]
    assert all(r["HOROVOD_SIZE"] == "2" and r["HOROVOD_TIMELINE"] is None for r in seen)
    assert all(r["HOROVOD_CYCLE_TIME"] == "7" and r["HOROVOD_FUSION_THRESHOLD"] == "1048576"
               for r in seen)
