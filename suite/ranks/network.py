"""A rank's network, checked before Gloo starts: Gloo crashes (SIGSEGV) instead of saying why.

Horovod's Gloo device set-up (`gloo::transport::tcp::CreateDeviceAttr`) looks up
the host's name and the interface in HOROVOD_GLOO_IFACE; on a misconfigured node
that kills the rank with a signal and the trial is recorded as "actor died" or
"exit code -11". `check_rank_network` makes the same lookups first and raises a
GenbenchError naming the host and the fix. The interface is chosen the way Horovod
users expect: HOROVOD_GLOO_IFACE when the user set it, else the one that routes
to rank 0's (the rendezvous) address.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from suite.common.errors import GenbenchError
from suite.ranks.env import GLOO_IFACE_ENV, address_towards, interface_of

USER_IFACE_ENV = "HOROVOD_GLOO_IFACE"  # as with horovodrun: the user's choice wins


def choose_interface(rank0_address: str, env: Mapping[str, str] = os.environ) -> str:
    """The interface Gloo should use on this host to reach rank 0 at `rank0_address`.

    $HOROVOD_GLOO_IFACE (or genbench's older $GENBENCH_GLOO_IFACE) when set, else
    the interface holding this host's address on the route to `rank0_address`.
    """
    chosen = env.get(USER_IFACE_ENV) or env.get(GLOO_IFACE_ENV)
    if chosen:
        return chosen
    local = address_towards(rank0_address)
    try:
        return interface_of(local, env={})
    except RuntimeError:
        raise GenbenchError(
            f"host {host_name()}: no network interface holds {local}, this host's address "
            f"on the route to rank 0 ({rank0_address}); fix: set {USER_IFACE_ENV} to the "
            "interface the ranks reach each other on") from None


def host_name() -> str:
    return socket.gethostname()


def check_rank_network(hostname: str, iface: str) -> None:
    """Raise GenbenchError (naming `hostname` and the fix) if Gloo would crash on this host:
    the name does not resolve, or `iface` (when given) does not exist or holds no address."""
    try:
        socket.getaddrinfo(hostname, None)
    except (socket.gaierror, UnicodeError) as e:
        raise GenbenchError(
            f"host {hostname}: its hostname does not resolve ({e}), and Horovod's Gloo "
            "would crash on it; fix: make every node's name resolve on every node (DNS or "
            f"/etc/hosts, e.g. '<address> {hostname}')") from None
    if not iface:
        return
    import psutil  # a Horovod dependency: present wherever ranks run

    interfaces = psutil.net_if_addrs()
    if iface not in interfaces:
        raise GenbenchError(
            f"host {hostname}: network interface {iface!r} (HOROVOD_GLOO_IFACE) does not "
            f"exist here (interfaces: {', '.join(sorted(interfaces))}); fix: set "
            f"{USER_IFACE_ENV} to an interface every node has, or unset it to use the "
            "one that routes to rank 0")
    families = (socket.AF_INET, socket.AF_INET6)
    if not any(a.family in families for a in interfaces[iface]):
        raise GenbenchError(
            f"host {hostname}: network interface {iface!r} (HOROVOD_GLOO_IFACE) holds no IP "
            f"address; fix: bring it up with an address, or set {USER_IFACE_ENV} to "
            "another interface")
