"""What the trainer needs from data parallelism, without importing Horovod.

The trainer codes against `Replicas`; `SingleReplica` is the one-process
implementation (identity collectives), and `suite.training.horovod`
provides the Horovod one. Keeping this file free of Horovod and TensorFlow
lets single-process runs, unit tests and laptops work without either.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits among the replicas.

    `local_*` count processes on this host: they share its cores and GPUs.
    """

    rank: int
    size: int
    local_rank: int
    local_size: int


@runtime_checkable
class Replicas(Protocol):
    """Collectives one training step and its bookkeeping need.

    Every replica must call the same collectives in the same order, or they
    wait on each other forever.
    """

    info: RankInfo

    def average_gradients(self, grads: list) -> list:
        """Mean of each tensor over replicas, in ONE fused collective; called inside a
        `tf.function` step with all of a step's gradients and losses.

        `None` entries (variables the loss does not touch) stay `None`.
        """
        ...

    def broadcast_variables(self, variables: list) -> None:
        """Copy rank 0's values into these Keras variables on every rank (eager).

        Call once after building the model (and the optimizer, when resuming)
        so all replicas start from the same point.
        """
        ...

    def allreduce_mean(self, value: float) -> float:
        """Mean of a host-side scalar over replicas (eager), e.g. a loss to log."""
        ...

    def allreduce_max(self, value: float) -> float:
        """Max of a host-side scalar over replicas (eager), e.g. a step time."""
        ...

    def allreduce_max_many(self, values: Sequence[float]) -> list[float]:
        """Elementwise max of host-side scalars over replicas, in one collective (eager)."""
        ...

    def barrier(self) -> None:
        """Return only when every replica has reached this call."""
        ...

    def allgather_hostnames(self) -> list[str]:
        """Every replica's hostname, in rank order: the trial's placement, for its rows."""
        ...


@dataclass
class SingleReplica:
    """Rank 0 of 1: every collective is the identity, so one code path serves both."""

    info: RankInfo = field(default_factory=lambda: RankInfo(0, 1, 0, 1))

    def average_gradients(self, grads: list) -> list:
        """The mean over one replica is the gradient itself."""
        return list(grads)

    def broadcast_variables(self, variables: list) -> None:
        """Nothing to copy from: this process is rank 0."""

    def allreduce_mean(self, value: float) -> float:
        """The mean over one replica is the value itself."""
        return float(value)

    def allreduce_max(self, value: float) -> float:
        """The max over one replica is the value itself."""
        return float(value)

    def allreduce_max_many(self, values: Sequence[float]) -> list[float]:
        """The max over one replica is each value itself."""
        return [float(v) for v in values]

    def barrier(self) -> None:
        """Nobody to wait for."""

    def allgather_hostnames(self) -> list[str]:
        """Only this host."""
        return [socket.gethostname()]
