"""What a Slurm job's environment says about its ranks: pure functions, no Horovod, no Slurm.

A job step started by `srun -n N` already has N processes on the right nodes;
what they lack is horovodrun's rendezvous. Task 0 starts Horovod's rendezvous
server with the plan built here from the step's node list, and publishes its
address in a small file on the shared filesystem; every task reads it and sets
the variables horovodrun would have set (`slurm_rank_env`). No MPI or PMI is
involved, so it works with any Slurm MpiDefault and the Gloo-only Horovod build.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from suite.common.atomic import write_json_atomic
from suite.ranks.env import LOOPBACK, Slot, address_towards, horovod_env, host_plan

RENDEZVOUS_TIMEOUT_ENV = "GENBENCH_RENDEZVOUS_TIMEOUT"  # seconds tasks wait for task 0 (300)
RENDEZVOUS_TIMEOUT_S = 300.0


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
    """Slurm's compressed host list, e.g. `gpu[01-03,7],login1` -> host names.

    Zero padding is per range (`[01-03,7]` gives gpu01 and gpu7), as in Slurm;
    several bracket groups multiply out (`r[1-2]-n[1-2]`).
    """
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
        if "[" in item or "]" in item:
            raise ValueError(f"cannot parse host list item {item[:60]!r}")
        return [item]
    prefix, ranges, rest = match.groups()
    tails = _expand_host_item(rest) if rest else [""]
    hosts = []
    for part in ranges.split(","):
        bounds = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not bounds:
            raise ValueError(f"cannot parse host range {part[:60]!r} in {item[:60]!r}")
        low, high = bounds[1], bounds[2] or bounds[1]
        for n in range(int(low), int(high) + 1):
            hosts.extend(f"{prefix}{n:0{len(low)}d}{tail}" for tail in tails)
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """Slurm's tasks-per-node list, e.g. `2(x3),1` -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not match:
            raise ValueError(f"cannot parse tasks per node {text[:60]!r}")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def step_hosts(env: Mapping[str, str]) -> list[tuple[str, int]]:
    """(node, tasks on it) of the current srun step, in Slurm's node order."""
    nodes = expand_hostlist(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", ""))
    tasks = expand_tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE")
                                  or env.get("SLURM_TASKS_PER_NODE", ""))
    if not nodes or len(nodes) != len(tasks):
        raise RuntimeError(f"cannot match Slurm nodes {nodes} to tasks per node {tasks}")
    size = srun_step_size(env)
    if sum(tasks) != size:
        raise RuntimeError(f"Slurm tasks per node {tasks} do not add up to {size} tasks")
    return list(zip(nodes, tasks, strict=True))


def step_plan(env: Mapping[str, str]) -> list[Slot]:
    """The Horovod plan (one Slot per rank) of the current srun step."""
    return host_plan(step_hosts(env))


def node_name(env: Mapping[str, str]) -> str:
    return env.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def step_slot(env: Mapping[str, str]) -> Slot:
    """This task's slot: this node's slot with this task's local id.

    Taken from the plan, not from SLURM_PROCID, so that it agrees with the
    rendezvous server's scopes whatever srun's task distribution (cyclic too).
    """
    node, local_id = node_name(env), int(env.get("SLURM_LOCALID", "0"))
    plan = step_plan(env)
    slots = [s for s in plan if s.hostname == node and s.local_rank == local_id]
    if len(slots) != 1:
        raise RuntimeError(f"node {node!r} local task {local_id} is not in the Slurm step's "
                           f"plan {[(s.hostname, s.local_rank) for s in plan]}")
    return slots[0]


def slurm_rank_env(env: Mapping[str, str], addr: str, port: int, iface: str) -> dict[str, str]:
    """The variables horovodrun would give this srun task, from its SLURM_* variables."""
    return horovod_env(step_slot(env), addr, port, iface)


def rendezvous_address(env: Mapping[str, str]) -> str:
    """Where task 0's server listens: loopback when the step has one node, else the
    address on the route to another node of the step (never every interface)."""
    me = node_name(env)
    others = [n for n, _ in step_hosts(env) if n != me]
    return LOOPBACK if not others else address_towards(others[0])


def rendezvous_file_path(directory: str | Path | None, env: Mapping[str, str]) -> Path:
    """Where task 0 publishes host:port: one name per job, step and requeue."""
    if directory is None:
        directory = Path(env.get("SLURM_SUBMIT_DIR", ".")) / ".genbench-rendezvous"
    key = ".".join([env.get("SLURM_JOB_ID", "0"),
                    env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID", "0"),
                    env.get("SLURM_RESTART_COUNT", "0")])
    return Path(directory) / f".horovod-rendezvous-{key}.json"


def publish_rendezvous(path: Path, addr: str, port: int) -> None:
    """Atomically, so that a waiting task never reads half a file."""
    write_json_atomic(path, {"addr": addr, "port": int(port)})


def rendezvous_timeout(env: Mapping[str, str] = os.environ) -> float:
    value = env.get(RENDEZVOUS_TIMEOUT_ENV, "")
    try:
        return float(value) if value else RENDEZVOUS_TIMEOUT_S
    except ValueError:
        return RENDEZVOUS_TIMEOUT_S


def wait_for_rendezvous(path: Path, timeout_s: float, poll_s: float = 0.2) -> tuple[str, int]:
    """(addr, port) once task 0 has published them; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            data = json.loads(path.read_text())
            return str(data["addr"]), int(data["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"task 0 did not publish the Horovod rendezvous in {path} within "
                f"{timeout_s:g} s (${RENDEZVOUS_TIMEOUT_ENV}); the directory must be on a "
                "filesystem shared by all nodes of the job")
        time.sleep(poll_s)


# What a rank sees when a peer's process or host goes away mid-collective: Horovod's
# background loop stops (the Gloo read error with the peer's address goes to stderr only).
PEER_LOSS_MARKERS = ("Horovod has been shut down", "HorovodInternalError",
                     "Connection reset by peer", "Connection closed by peer", "Timed out")


def other_step_hosts(env: Mapping[str, str]) -> dict[str, list[int]]:
    """Host -> its ranks, for the hosts of this srun step other than this task's own."""
    me = node_name(env)
    hosts: dict[str, list[int]] = {}
    for slot in step_plan(env):
        if slot.hostname != me:
            hosts.setdefault(slot.hostname, []).append(slot.rank)
    return hosts


def lost_peer_message(error: str, env: Mapping[str, str]) -> str | None:
    """The failure message naming the hosts whose ranks this task lost, when `error` is a
    collective that failed because a peer went away and the step spans hosts; else None.

    The surviving task cannot tell from Horovod's exception which peer it was, but it
    knows the plan: with its own host alive, the lost rank is on one of the others.
    """
    if not any(marker in error for marker in PEER_LOSS_MARKERS):
        return None
    try:
        others = other_step_hosts(env)
    except (RuntimeError, ValueError):
        return None
    if not others:
        return None
    named = ", ".join(f"{host} (rank{'s' if len(ranks) > 1 else ''} "
                      f"{','.join(map(str, ranks))})" for host, ranks in others.items())
    which = "host" if len(others) == 1 else "one of the hosts"
    return (f"lost contact with {which} {named}: its ranks stopped answering in a collective "
            f"(node down, killed or unreachable); {node_name(env)} stopped its ranks. "
            f"Re-run to resume from the last checkpoint. Horovod said: {error[:300]}")
