"""Local launcher: trials one after another on this machine.

Single-worker trials run in this process. A trial with `workers: N > 1` runs
as N Horovod ranks on this host (`horovodrun --gloo -np N`); the launcher
waits for them and reads the outcome from the results store.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from suite.events import TRIAL_END, TRIAL_START, Event, EventSink
from suite.launchers.base import Launcher
from suite.rank_main import LAUNCH_FILE, write_launch_file
from suite.results import trial_dir
from suite.schema import STATUS_OK
from suite.spec import Trial
from suite.worker import (
    RunContext,
    TrialResult,
    outcome_from_store,
    run_trial,
    skip_if_finished,
    trial_label,
)

WORKER_LOG = "worker.log"


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    timeline: bool = False  # write a Horovod timeline (timeline.json) for multi-worker trials


class LocalLauncher(Launcher):
    name = "local"
    options_type = LocalOptions

    def _launch(self, trials: list[Trial], ctx: RunContext,
                on_event: EventSink) -> list[TrialResult]:
        return [run_trial(t, ctx, on_event=on_event) if t.workers == 1
                else self._run_ranks(t, ctx, on_event) for t in trials]

    def _run_ranks(self, trial: Trial, ctx: RunContext, on_event: EventSink) -> TrialResult:
        from suite.training.distributed import horovodrun_command

        skipped = skip_if_finished(trial, ctx, on_event)
        if skipped:
            return skipped
        directory = trial_dir(ctx.out, trial.sweep, trial.trial_id)
        directory.mkdir(parents=True, exist_ok=True)
        write_launch_file(directory / LAUNCH_FILE, trial, ctx)
        timeline = str(directory / "timeline.json") if self.options.timeline else None
        command = horovodrun_command(
            trial.workers, [sys.executable, "-m", "suite.rank_main", str(directory / LAUNCH_FILE)],
            timeline=timeline)
        label = trial_label(trial)
        on_event(Event(TRIAL_START, trial.trial_id, label, epochs=trial.epochs))
        log_path = directory / WORKER_LOG
        with open(log_path, "ab") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode
        result = outcome_from_store(
            trial, ctx, f"horovodrun exited with code {code} before the trial finished; "
                        f"see {log_path}", detail=log_path.read_text(errors="replace")[-4000:])
        on_event(Event(TRIAL_END, trial.trial_id, label,
                       epoch=trial.epochs if result.status == STATUS_OK else 0,
                       epochs=trial.epochs, status=result.status, message=result.error))
        return result
