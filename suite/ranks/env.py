"""Where each Horovod rank sits, and the variables that tell it: no Horovod import here.

Every genbench spawner (local processes, srun tasks, Ray actors) gives its ranks
the variables `horovodrun --gloo` would give them, so `hvd.init()` finds its
rank, its neighbours on the host and the rendezvous server in the environment.
The plan is the block layout of Horovod's `get_host_assignments`: ranks fill a
host before the next one, and the rendezvous server's scope sizes come from it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GLOO_IFACE_ENV = "GENBENCH_GLOO_IFACE"  # network interface for Gloo (default: found by route)
GLOO_TIMEOUT_ENV = "HOROVOD_GLOO_TIMEOUT_SECONDS"
GLOO_TIMEOUT_S = 120  # Horovod's default 30 s is short when TF imports on busy cores
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Slot:
    """One rank's place: the fields of Horovod's SlotInfo (its rendezvous server reads them)."""

    hostname: str
    rank: int
    local_rank: int
    cross_rank: int
    size: int
    local_size: int
    cross_size: int


def host_plan(hosts: Sequence[tuple[str, int]]) -> list[Slot]:
    """One Slot per rank for `(hostname, ranks on it)` pairs, in rank order.

    Ranks are numbered host by host; a rank's cross rank is the index of its host
    among the hosts that have a rank with the same local rank.
    """
    names = [name for name, _ in hosts]
    if len(set(names)) != len(names):
        raise ValueError(f"host listed twice in {names}")
    if any(count < 1 for _, count in hosts):
        raise ValueError(f"every host needs at least one rank: {list(hosts)}")
    size = sum(count for _, count in hosts)
    cross_sizes = [sum(1 for _, count in hosts if count > local) for local in
                   range(max((count for _, count in hosts), default=0))]
    plan: list[Slot] = []
    for i, (name, count) in enumerate(hosts):
        for local in range(count):
            cross_rank = sum(1 for _, n in hosts[:i] if n > local)
            plan.append(Slot(name, len(plan), local, cross_rank, size, count, cross_sizes[local]))
    return plan


# What horovod_env sets, plus the timeline: a rank's place and rendezvous, never inherited
# from the launcher's own environment. Horovod's tuning variables (HOROVOD_CYCLE_TIME,
# HOROVOD_FUSION_THRESHOLD, HOROVOD_LOG_LEVEL, ...) pass through, as with horovodrun.
RANK_PLACE_VARS = frozenset({
    "HOROVOD_GLOO_RENDEZVOUS_ADDR", "HOROVOD_GLOO_RENDEZVOUS_PORT", "HOROVOD_CONTROLLER",
    "HOROVOD_CPU_OPERATIONS", "HOROVOD_GLOO_IFACE", "HOROVOD_HOSTNAME", "HOROVOD_RANK",
    "HOROVOD_SIZE", "HOROVOD_LOCAL_RANK", "HOROVOD_LOCAL_SIZE", "HOROVOD_CROSS_RANK",
    "HOROVOD_CROSS_SIZE", "HOROVOD_TIMELINE"})


def horovod_env(slot: Slot, addr: str, port: int, iface: str,
                timeline: Path | str | None = None) -> dict[str, str]:
    """The variables `horovodrun --gloo` sets for the rank in `slot` (Gloo on CPU)."""
    env = {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": addr,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(port),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
        "HOROVOD_GLOO_IFACE": iface,
        "HOROVOD_HOSTNAME": slot.hostname,
        "HOROVOD_RANK": str(slot.rank),
        "HOROVOD_SIZE": str(slot.size),
        "HOROVOD_LOCAL_RANK": str(slot.local_rank),
        "HOROVOD_LOCAL_SIZE": str(slot.local_size),
        "HOROVOD_CROSS_RANK": str(slot.cross_rank),
        "HOROVOD_CROSS_SIZE": str(slot.cross_size),
        GLOO_TIMEOUT_ENV: os.environ.get(GLOO_TIMEOUT_ENV, str(GLOO_TIMEOUT_S)),
    }
    if timeline is not None:
        env["HOROVOD_TIMELINE"] = str(timeline)
    return env


def address_towards(host: str) -> str:
    """This host's IP address on the route to `host` (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return s.getsockname()[0]


def interface_of(address: str, env: Mapping[str, str] = os.environ) -> str:
    """The network interface holding `address`: Gloo listens on one interface's address.

    $GENBENCH_GLOO_IFACE overrides the lookup (e.g. a fast interconnect).
    """
    if env.get(GLOO_IFACE_ENV):
        return env[GLOO_IFACE_ENV]
    import psutil  # a Horovod dependency: present wherever ranks run

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == address for a in addrs):
            return name
    raise RuntimeError(f"no network interface has address {address}; set ${GLOO_IFACE_ENV}")
