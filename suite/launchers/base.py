"""The abstract launcher: public methods written once, backends fill `_launch`.

As in submitit, options are typed fields of a frozen dataclass per backend and
an unknown option is rejected with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from suite.errors import SpecError
from suite.events import EventSink, ignore_event
from suite.spec import Trial
from suite.worker import RunContext, TrialResult


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A launcher that takes no options."""


class Launcher(ABC):
    name: ClassVar[str] = "launcher"
    options_type: ClassVar[type] = NoOptions

    def __init__(self, **options: Any) -> None:
        valid = [f.name for f in dataclasses.fields(self.options_type)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise SpecError(f"--launcher {self.name}", unknown[0], "unknown launcher option",
                            f"valid options: {', '.join(valid) or '(none)'}")
        self.options = self.options_type(**options)

    def launch(self, trials: Sequence[Trial], ctx: RunContext,
               on_event: EventSink = ignore_event) -> list[TrialResult]:
        """Run the trials; failed trials are results, not exceptions."""
        if not trials:
            return []
        return self._launch(list(trials), ctx, on_event)

    @abstractmethod
    def _launch(self, trials: list[Trial], ctx: RunContext,
                on_event: EventSink) -> list[TrialResult]: ...
