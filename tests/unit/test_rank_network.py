"""A rank's network checks and Gloo interface choice, on this machine's real interfaces."""

from __future__ import annotations

import socket

import pytest

from suite.common.errors import GenbenchError
from suite.ranks.entry import start_replicas
from suite.ranks.network import check_rank_network, choose_interface
from suite.training.replicas import SingleReplica
from suite.trial.run import placement_columns


def test_loopback_passes_the_checks():
    check_rank_network("localhost", "lo")
    check_rank_network(socket.gethostname(), "")  # no interface chosen: the name only


def test_missing_interface_fails_naming_host_and_fix():
    with pytest.raises(GenbenchError) as e:
        check_rank_network("localhost", "gbnope0")
    message = str(e.value)
    assert "host localhost" in message and "'gbnope0'" in message
    assert "does not exist" in message and "HOROVOD_GLOO_IFACE" in message
    assert "lo" in message.split("interfaces:")[1]  # lists the ones that exist


def test_unresolvable_hostname_fails_naming_host_and_fix():
    with pytest.raises(GenbenchError) as e:
        check_rank_network("gb-no-such-host.invalid", "lo")
    message = str(e.value)
    assert "host gb-no-such-host.invalid" in message
    assert "does not resolve" in message and "/etc/hosts" in message


def test_user_interface_wins_over_the_route():
    assert choose_interface("127.0.0.1", {"HOROVOD_GLOO_IFACE": "ib7"}) == "ib7"


def test_route_to_rank0_chooses_the_interface():
    assert choose_interface("127.0.0.1", {}) == "lo"


def test_spawned_rank_with_missing_interface_fails_before_horovod():
    env = {"HOROVOD_SIZE": "2", "HOROVOD_GLOO_IFACE": "gbnope0"}
    with pytest.raises(GenbenchError, match="gbnope0"):
        start_replicas(env=env)  # raises before importing or initialising Horovod


def test_one_replica_is_placed_on_this_host():
    assert placement_columns(SingleReplica()) == {"hosts": socket.gethostname(), "nodes": 1}
