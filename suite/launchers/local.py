"""Local launcher: trials one after another on this machine.

Single-worker trials run in this process. A trial with `workers: N > 1` runs
as N Horovod ranks on this host (`horovodrun --gloo -np N`); the launcher
waits for them and reads the outcome from the results store.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from suite.events import TRIAL_END, TRIAL_SKIP, TRIAL_START, Event, EventSink
from suite.launchers.base import Launcher
from suite.rank_main import LAUNCH_FILE, write_launch_file
from suite.results import RESULT_FILE, is_finished, read_rows, trial_dir, trial_state
from suite.schema import STATUS, STATUS_FAILED, STATUS_OK
from suite.spec import Trial
from suite.worker import RunContext, TrialResult, record_failure, run_trial, trial_label

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

        directory = trial_dir(ctx.out, trial.sweep, trial.trial_id)
        label = trial_label(trial)
        state = trial_state(directory, trial.milestones)
        if is_finished(state):
            on_event(Event(TRIAL_SKIP, trial.trial_id, label, status=state))
            return TrialResult(trial.trial_id, state, skipped=True)
        directory.mkdir(parents=True, exist_ok=True)
        write_launch_file(directory / LAUNCH_FILE, trial, ctx)
        timeline = str(directory / "timeline.json") if self.options.timeline else None
        command = horovodrun_command(
            trial.workers, [sys.executable, "-m", "suite.rank_main", str(directory / LAUNCH_FILE)],
            timeline=timeline)
        on_event(Event(TRIAL_START, trial.trial_id, label, epochs=trial.epochs))
        with open(directory / WORKER_LOG, "ab") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode
        status = trial_state(directory, trial.milestones)
        error = ""
        if not is_finished(status):
            rows = read_rows(directory / RESULT_FILE)
            recorded = [r for r in rows if r[STATUS] == STATUS_FAILED]
            error = (recorded[-1]["error"] if recorded else
                     f"horovodrun exited with code {code} before the trial finished; "
                     f"see {directory / WORKER_LOG}")
            if not recorded:
                tail = (directory / WORKER_LOG).read_text(errors="replace")[-4000:]
                record_failure(trial, ctx, error, tail)
            status = STATUS_FAILED
        on_event(Event(TRIAL_END, trial.trial_id, label, epoch=trial.epochs if status == STATUS_OK
                       else 0, epochs=trial.epochs, status=status, message=error))
        return TrialResult(trial.trial_id, status, error=error)
