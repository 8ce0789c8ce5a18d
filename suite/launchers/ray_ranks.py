"""A trial's Horovod ranks as Ray actors, for the Ray launcher; and an embedded Ray on loopback.

The ranks are plain Ray actors in the caller's placement group (a Tune trial's
bundles), given the variables horovodrun would give them, with the rendezvous
server running in the caller's process on the Ray node's address. This is what
`horovod.ray.RayExecutor` does, except that its server listens on every
interface (`RendezvousServer.start()` binds to ''), and that here only
suite.training.horovod imports Horovod.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from suite.ranks.env import Slot, horovod_env, host_plan
from suite.ranks.network import choose_interface

log = logging.getLogger(__name__)
# After a rank fails, how long to wait for Ray to report a peer's actor dead (Ray marks a
# node dead after its health checks fail: about 15 s with Ray 2.60's defaults), so that
# the error names the lost host rather than the survivor's broken collective.
PEER_GRACE_S = 30.0
KILL_WAIT_S = 30.0  # for killed rank actors to be seen dead
COLLECTIVE_ERROR_WORDS = ("horovod", "gloo", "connection")  # what a lost peer looks like


class RankLostError(RuntimeError):
    """A rank's Ray actor died: its node, raylet or process went away."""

    def __reduce__(self):
        return (RankLostError, (str(self),))


def init_loopback_ray(**options: Any) -> None:
    """`ray.init(address="local", ...)` with every Ray server listening on 127.0.0.1 only.

    Ray binds its servers to loopback when the node's address is 127.0.0.1, but
    `ray.init(_node_ip_address="127.0.0.1")` swaps a loopback address for the
    host's routable one unless Ray clusters are disabled, a flag Ray reads from
    $RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported (it is how Ray keeps
    to loopback on macOS and Windows). The flag is cleared only while this
    one-node Ray starts; joining a cluster (--address) is left alone.
    """
    import ray
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", _node_ip_address="127.0.0.1", **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


class RankActor:
    """One Horovod rank: reports where it runs, then runs the rank's function."""

    def place(self) -> tuple[str, str, list, str]:
        """(Ray node id, node address, GPU ids, hostname) of this actor."""
        import socket

        import ray

        return (ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(),
                [str(g) for g in ray.get_gpu_ids()], socket.gethostname())

    def run(self, env: dict[str, str], fn: Callable, args: tuple) -> Any:
        # Gloo uses this node's $HOROVOD_GLOO_IFACE if set, else the interface that
        # routes to the rendezvous (rank 0's side); start_replicas checks it exists.
        iface = choose_interface(env["HOROVOD_GLOO_RENDEZVOUS_ADDR"], os.environ)
        env = {**env, "HOROVOD_GLOO_IFACE": iface}
        os.environ.update(env)
        return fn(*args)


def rank_plan(places: list[tuple]) -> tuple[list[Slot], dict[str, str]]:
    """Slots for actors at `places`, by actor index (ranks host by host, hosts in order of
    first appearance), and each node's GPU ids (so that local ranks pin different GPUs)."""
    nodes: dict[str, list[int]] = {}
    for i, (node, *_) in enumerate(places):
        nodes.setdefault(node, []).append(i)
    plan = host_plan([(node, len(actors)) for node, actors in nodes.items()])
    by_actor: dict[int, Slot] = {}
    for slot in plan:
        by_actor[nodes[slot.hostname][slot.local_rank]] = slot
    gpus = {node: ",".join(g for i in actors for g in places[i][2])
            for node, actors in nodes.items()}
    return [by_actor[i] for i in range(len(places))], gpus


def run_ranks_on_ray(fn: Any, args: tuple = (), *, num_workers: int, cpus_per_worker: float = 1,
                     gpus_per_worker: float = 0, start_timeout_s: int = 60,
                     poll: Any = None, poll_interval_s: float = 1.0,
                     peer_grace_s: float = PEER_GRACE_S) -> list:
    """Run `fn(*args)` as `num_workers` Horovod ranks, one Ray actor each; rank order results.

    Called inside a Ray task or actor that holds a placement group (a Tune trial),
    the rank actors take that group's bundles; elsewhere a group is reserved here.
    Each actor finds HOROVOD_RANK/SIZE/LOCAL_* and the Gloo rendezvous in its
    environment, so `fn` calls `suite.ranks.entry.start_replicas()` before any
    TensorFlow op. `poll()` runs every `poll_interval_s` while the ranks work
    (e.g. to forward progress). If one rank raises or its actor dies, the others
    are killed (they would wait in a collective for ever) and the error is raised here;
    a rank whose actor died (its node or raylet went away) raises RankLostError naming
    its host, also when a surviving rank's collective failed first (`peer_grace_s`).
    """
    import ray
    from ray.util.placement_group import (
        get_current_placement_group,
        placement_group,
        remove_placement_group,
    )
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from suite.training.horovod import start_rendezvous, stop_rendezvous

    group, own_group = get_current_placement_group(), None
    if group is None:
        bundle = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        group = own_group = placement_group([dict(bundle)] * num_workers, strategy="PACK")
        if not ray.wait([group.ready()], timeout=start_timeout_s)[0]:
            remove_placement_group(group)
            raise TimeoutError(f"Ray could not reserve {num_workers} x {bundle} within "
                               f"{start_timeout_s} s (available: {ray.available_resources()})")
    # Actor i in bundle i: a Tune group's bundle 0 also holds the caller (its empty head
    # bundle), so rank 0 runs beside the rendezvous server.
    pinned = group.bundle_count == num_workers
    actor_cls = ray.remote(RankActor)
    actors = [actor_cls.options(
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker or 0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(
            group, placement_group_bundle_index=i if pinned else -1,
            placement_group_capture_child_tasks=False)).remote() for i in range(num_workers)]
    port, refs = None, []
    try:
        places = ray.get([a.place.remote() for a in actors], timeout=start_timeout_s)
        slots, gpus = rank_plan(places)
        address = ray.util.get_node_ip_address()
        port = start_rendezvous(slots, bind_address=address)
        refs = []
        for actor, slot, (node, *_) in zip(actors, slots, places, strict=True):
            env = horovod_env(slot, address, port, iface="")
            if gpus[node]:
                env["CUDA_VISIBLE_DEVICES"] = gpus[node]
            refs.append(actor.run.remote(env, fn, tuple(args)))
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=poll_interval_s)
            for ref in done:
                _raise_first_error(ref, refs, places, slots, pending, peer_grace_s)
            if poll is not None:
                poll()
        results = ray.get(refs)
        return [results[i] for i in sorted(range(num_workers), key=lambda i: slots[i].rank)]
    finally:
        for actor in actors:
            ray.kill(actor)
        # ray.kill only asks: wait until every rank's task has ended (a killed actor's
        # reference resolves once Ray saw its process die), so that rank 0's lease is
        # released or its holder dead before the caller reports the trial's end. Else the
        # driver could find the trial still held and take a failed trial for a busy one.
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=KILL_WAIT_S)
        if port is not None:
            stop_rendezvous(port)
        if own_group is not None:
            remove_placement_group(own_group)


def _raise_first_error(ref: Any, refs: list, places: list[tuple], slots: list[Slot],
                       pending: list, grace_s: float) -> None:
    """Return if the rank of `ref` succeeded; else raise its error, or RankLostError for a
    rank whose actor died (checked first among the still pending ranks, for `grace_s`)."""
    import ray
    from ray.exceptions import RayActorError

    try:
        ray.get(ref)
        return
    except RayActorError as exc:
        raise _lost(refs.index(ref), exc, places, slots) from None
    except Exception as exc:
        # A survivor's collective fails as soon as its peer's socket closes; Ray tells
        # whether that peer died a little later. Other errors are raised at once.
        if not any(word in str(exc).lower() for word in COLLECTIVE_ERROR_WORDS):
            raise
        deadline = time.monotonic() + grace_s
        waiting = list(pending)
        while waiting and time.monotonic() < deadline:
            done, waiting = ray.wait(waiting, num_returns=1,
                                     timeout=max(0.0, deadline - time.monotonic()))
            for other in done:
                try:
                    ray.get(other)
                except RayActorError as died:
                    raise _lost(refs.index(other), died, places, slots) from exc
                except Exception:
                    pass
        raise


def _lost(i: int, exc: BaseException, places: list[tuple], slots: list[Slot]) -> RankLostError:
    """The error for actor `i`, which died: its rank, host and address, and Ray's reason."""
    _, address, _, hostname = places[i]
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return RankLostError(
        f"rank {slots[i].rank} on host {hostname} ({address}) was lost: its Ray actor died "
        f"({reason}); the host, its raylet or the rank's process went away. Fix: check "
        f"{hostname}; re-running the sweep resumes the trial from its last checkpoint")
