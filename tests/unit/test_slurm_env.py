"""Slurm's environment -> Horovod ranks: host lists, plans, rank variables, rendezvous file.

Pure functions, no Slurm and no cluster; Horovod is imported only to compare the
plan with its own get_host_assignments.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from suite.ranks.env import Slot, horovod_env, host_plan
from suite.ranks.slurm_env import (
    expand_hostlist,
    expand_tasks_per_node,
    lost_peer_message,
    publish_rendezvous,
    rendezvous_address,
    rendezvous_file_path,
    slurm_rank_env,
    srun_step_size,
    step_plan,
    wait_for_rendezvous,
)
from suite.ranks.srun import allocation_tasks, inside_slurm_allocation


@pytest.mark.parametrize("text, hosts", [
    ("vm", ["vm"]),
    ("gpu[01-03,7],login1", ["gpu01", "gpu02", "gpu03", "gpu7", "login1"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),  # padding only where the bound has it
    ("n[008-010]", ["n008", "n009", "n010"]),
    ("r[1-2]-n[1-2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),  # nested: multiplied out
    ("a[1,3],b,c[09-10].ib", ["a1", "a3", "b", "c09.ib", "c10.ib"]),
    ("", []),
])
def test_hostlist_expands_like_slurm(text: str, hosts: list[str]) -> None:
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text", ["gpu[1-x]", "gpu[1-2", "gpu]1["])
def test_malformed_hostlist_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        expand_hostlist(text)


def test_tasks_per_node_expand_like_slurm() -> None:
    assert expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert expand_tasks_per_node("4") == [4]
    assert expand_tasks_per_node("1,2(x2)") == [1, 2, 2]
    for bad in ("two", "2(x)", "2x3", ""):
        with pytest.raises(ValueError):
            expand_tasks_per_node(bad)


LAYOUTS = [
    [("a", 1)],
    [("a", 4)],
    [("a", 2), ("b", 2)],
    [("a", 2), ("b", 2), ("c", 2), ("d", 1)],
    [("a", 1), ("b", 3), ("c", 2)],  # uneven: cross sizes differ per local rank
    [("n1", 3), ("n2", 1), ("n3", 3)],
]


@pytest.mark.parametrize("hosts", LAYOUTS)
def test_plan_equals_horovods_host_assignments(hosts: list[tuple[str, int]]) -> None:
    pytest.importorskip("horovod")
    from horovod.runner.common.util.hosts import HostInfo, get_host_assignments

    size = sum(n for _, n in hosts)
    theirs = get_host_assignments([HostInfo(h, n) for h, n in hosts], size)
    assert [Slot(**vars(s)) for s in theirs] == host_plan(hosts)


def test_plan_rejects_repeated_or_empty_hosts() -> None:
    with pytest.raises(ValueError):
        host_plan([("a", 1), ("a", 1)])
    with pytest.raises(ValueError):
        host_plan([("a", 0)])


def test_srun_step_size_counts_only_steps() -> None:
    assert srun_step_size({}) == 1
    # The batch script of `sbatch --ntasks=4` is one process, not a step of 4.
    assert srun_step_size({"SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}) == 1
    assert srun_step_size({"SLURM_STEP_NUM_TASKS": "4"}) == 4
    assert srun_step_size({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "3"}) == 3
    assert srun_step_size({"SLURM_STEP_NUM_TASKS": ""}) == 1


TWO_NODE_STEP = {"SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "n[1-2]",
                 "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_JOB_ID": "11"}


@pytest.mark.parametrize("node, local_id, expected", [
    ("n1", "0", ("0", "0", "0")),
    ("n1", "1", ("1", "1", "0")),
    ("n2", "0", ("2", "0", "1")),
    ("n2", "1", ("3", "1", "1")),
])
def test_rank_env_of_a_two_node_step(node: str, local_id: str, expected: tuple) -> None:
    env = slurm_rank_env({**TWO_NODE_STEP, "SLURMD_NODENAME": node, "SLURM_LOCALID": local_id},
                         "10.0.0.1", 1234, "eth0")
    assert (env["HOROVOD_RANK"], env["HOROVOD_LOCAL_RANK"], env["HOROVOD_CROSS_RANK"]) == expected
    assert (env["HOROVOD_SIZE"], env["HOROVOD_LOCAL_SIZE"], env["HOROVOD_CROSS_SIZE"]) == (
        "4", "2", "2")
    assert env["HOROVOD_HOSTNAME"] == node
    assert env["HOROVOD_CONTROLLER"] == env["HOROVOD_CPU_OPERATIONS"] == "gloo"
    assert (env["HOROVOD_GLOO_RENDEZVOUS_ADDR"], env["HOROVOD_GLOO_RENDEZVOUS_PORT"],
            env["HOROVOD_GLOO_IFACE"]) == ("10.0.0.1", "1234", "eth0")


def test_rank_env_of_an_uneven_step_from_job_variables() -> None:
    # Without step variables the job's node list and tasks per node describe the step.
    job = {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "gpu[07-08]",
           "SLURM_TASKS_PER_NODE": "1,2"}
    env = slurm_rank_env({**job, "SLURMD_NODENAME": "gpu08", "SLURM_LOCALID": "1"},
                         "10.0.0.7", 99, "ib0")
    assert env["HOROVOD_RANK"] == "2" and env["HOROVOD_CROSS_SIZE"] == "1"
    assert [s.rank for s in step_plan(job)] == [0, 1, 2]


def test_rank_env_of_a_task_not_in_the_step_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not in the Slurm step"):
        slurm_rank_env({**TWO_NODE_STEP, "SLURMD_NODENAME": "n3", "SLURM_LOCALID": "0"},
                       "10.0.0.1", 1, "eth0")
    with pytest.raises(RuntimeError, match="do not add up"):
        step_plan({**TWO_NODE_STEP, "SLURM_STEP_NUM_TASKS": "5"})


def test_one_node_step_rendezvous_on_loopback() -> None:
    one_node = {"SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "vm",
                "SLURM_STEP_TASKS_PER_NODE": "2", "SLURMD_NODENAME": "vm"}
    assert rendezvous_address(one_node) == "127.0.0.1"


def test_a_lost_peer_is_named_by_its_host() -> None:
    shut_down = "UnknownError: Graph execution error: ... Horovod has been shut down. This was"
    on_n1 = {**TWO_NODE_STEP, "SLURMD_NODENAME": "n1", "SLURM_LOCALID": "0"}
    message = lost_peer_message(shut_down, on_n1)
    assert message is not None and "host n2 (ranks 2,3)" in message and "n1 stopped" in message
    assert "Horovod has been shut down" in message  # the original error is kept
    assert lost_peer_message("ValueError: loss is NaN", on_n1) is None  # not a lost peer
    one_node = {"SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "vm",
                "SLURM_STEP_TASKS_PER_NODE": "2", "SLURMD_NODENAME": "vm"}
    assert lost_peer_message(shut_down, one_node) is None  # no other host to name


def test_horovod_env_carries_the_timeline() -> None:
    slot = host_plan([("localhost", 2)])[1]
    env = horovod_env(slot, "127.0.0.1", 5, "lo", timeline="/tmp/t.json")
    assert env["HOROVOD_TIMELINE"] == "/tmp/t.json" and env["HOROVOD_RANK"] == "1"
    assert "HOROVOD_TIMELINE" not in horovod_env(slot, "127.0.0.1", 5, "lo")


def test_rendezvous_file_is_named_per_job_step_and_requeue(tmp_path) -> None:
    a = rendezvous_file_path(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "0"})
    b = rendezvous_file_path(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "1"})
    c = rendezvous_file_path(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "0",
                                        "SLURM_RESTART_COUNT": "1"})
    assert len({a, b, c}) == 3 and all(p.parent == tmp_path for p in (a, b, c))
    assert rendezvous_file_path(None, {"SLURM_SUBMIT_DIR": str(tmp_path)}).is_relative_to(
        tmp_path)


def test_rendezvous_file_is_published_and_awaited(tmp_path) -> None:
    path = tmp_path / "shared" / "rdv.json"
    timer = threading.Timer(0.3, publish_rendezvous, (path, "10.1.2.3", 4567))
    timer.start()
    start = time.monotonic()
    assert wait_for_rendezvous(path, timeout_s=10, poll_s=0.05) == ("10.1.2.3", 4567)
    assert 0.2 < time.monotonic() - start < 5
    timer.join()
    assert json.loads(path.read_text()) == {"addr": "10.1.2.3", "port": 4567}
    assert [p.name for p in path.parent.iterdir()] == ["rdv.json"]  # no temporary left


def test_waiting_for_a_rendezvous_times_out(tmp_path) -> None:
    path = tmp_path / "rdv.json"
    path.write_text('{"addr": "10.1.2.3"')  # half a file (a non-atomic writer) is not read
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not publish"):
        wait_for_rendezvous(path, timeout_s=0.5, poll_s=0.05)
    assert 0.4 < time.monotonic() - start < 3


def test_inside_slurm_allocation_only_in_a_batch_step_with_enough_tasks() -> None:
    batch = {"SLURM_JOB_ID": "9", "SLURM_NTASKS": "2", "SLURM_TASKS_PER_NODE": "2"}
    assert inside_slurm_allocation(2, batch)
    assert not inside_slurm_allocation(3, batch)  # too few tasks
    assert not inside_slurm_allocation(2, {})  # not in Slurm
    assert not inside_slurm_allocation(2, {**batch, "SLURM_STEP_NUM_TASKS": "2"})  # srun step
    assert not inside_slurm_allocation(1, {**batch, "SLURM_STEP_NUM_TASKS": "1"})
    nodes = {"SLURM_JOB_ID": "9", "SLURM_TASKS_PER_NODE": "2(x2)"}  # --ntasks-per-node only
    assert allocation_tasks(nodes) == 4 and inside_slurm_allocation(4, nodes)
