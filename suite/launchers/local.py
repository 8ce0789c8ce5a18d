"""Local launcher: trials one after another on this machine, in this process."""

from __future__ import annotations

from suite.events import EventSink
from suite.launchers.base import Launcher
from suite.spec import Trial
from suite.worker import RunContext, TrialResult, run_trial


class LocalLauncher(Launcher):
    name = "local"

    def _launch(self, trials: list[Trial], ctx: RunContext,
                on_event: EventSink) -> list[TrialResult]:
        return [run_trial(trial, ctx, on_event=on_event) for trial in trials]
