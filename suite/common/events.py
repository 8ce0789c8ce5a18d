"""Progress events a worker emits and a front end (rich, Ray, logs) renders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

TRIAL_START = "trial_start"
TRIAL_SKIP = "trial_skip"
EPOCH_END = "epoch_end"
MILESTONE = "milestone"  # a row was written: metrics holds its headline figures
TRIAL_END = "trial_end"


@dataclass(frozen=True)
class Event:
    kind: str
    trial_id: str
    label: str  # e.g. "dcgan/transpose seed=0"
    epoch: int = 0
    epochs: int = 0
    status: str = ""
    message: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """The default sink: workers run silently unless a front end listens."""
