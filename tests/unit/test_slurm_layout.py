"""How a trial's ranks are asked of Slurm: W per node, or N tasks on M nodes with --overcommit
(Slurm refuses --ntasks-per-node above a node's CPUs even with -O)."""

from __future__ import annotations

import pytest

from suite.common.errors import SpecError
from suite.launchers.slurm import SlurmLauncher, node_layout


def test_workers_per_node_sets_the_nodes() -> None:
    assert node_layout(4, 2) == (2, 2)
    assert node_layout(4, None) == (1, 4)
    with pytest.raises(SpecError, match="split evenly"):
        node_layout(4, 3)


def test_ranks_per_node_are_asked_as_tasks_per_node() -> None:
    params = SlurmLauncher(workers_per_node=2)._parameters("s", 4, 1)
    assert (params["nodes"], params["ntasks_per_node"]) == (2, 2)
    assert "overcommit" not in params["additional_parameters"]


def test_overcommit_asks_for_all_tasks_on_the_nodes() -> None:
    params = SlurmLauncher(workers_per_node=2, overcommit=True)._parameters("s", 4, 1)
    assert params["nodes"] == 2 and "ntasks_per_node" not in params
    assert params["additional_parameters"]["ntasks"] == 4
    assert params["additional_parameters"]["overcommit"] is True
    assert params["additional_parameters"]["requeue"] is True
