"""The abstract launcher: THE trial lifecycle, written once; backends only start processes.

    launch(trials)  1. the backend checks what it can before any work (`_check`)
                    2. the store says which trials are finished: they are reported skipped
                    3. the backend starts the rest and waits (`_start`), telling the
                       tracker when each trial's processes start and end
                    4. every outcome is read from the store; processes that ended without
                       a row are recorded `failed` (with the environment the trial's own
                       process recorded, never this driver's); start and end events are
                       emitted the same way for every backend

As in submitit, options are typed fields of a frozen dataclass per backend and
an unknown option is rejected with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from suite.common.errors import SpecError
from suite.common.events import TRIAL_END, TRIAL_SKIP, TRIAL_START, Event, EventSink, ignore_event
from suite.store import schema
from suite.store.lease import LeaseHolder
from suite.store.states import STATE_BUSY, is_finished
from suite.store.trial_store import TrialStore
from suite.sweep.spec import Trial
from suite.trial.columns import config_columns
from suite.trial.context import RunContext, TrialResult, trial_label

# Whether a lease's holder is known dead, by what the backend saw (see TrialTracker.end).
HolderCheck = Callable[[LeaseHolder], bool] | None


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A launcher that takes no options."""


class TrialTracker:
    """Outcomes and events of one launch, read from the results store."""

    def __init__(self, ctx: RunContext, on_event: EventSink) -> None:
        self.ctx, self.on_event = ctx, on_event
        self.results: dict[str, TrialResult] = {}
        self._started: set[str] = set()

    def store(self, trial: Trial) -> TrialStore:
        return TrialStore.of(self.ctx.out, trial)

    def skip_finished(self, trials: Sequence[Trial]) -> list[Trial]:
        """Report the finished trials as skipped; return the others, in order."""
        todo = []
        for t in trials:
            state = self.store(t).state(t.milestones)
            if is_finished(state):
                self._skip(t, TrialResult(t.trial_id, state, skipped=True))
            else:
                todo.append(t)
        return todo

    def start(self, trial: Trial) -> None:
        if trial.trial_id not in self._started:
            self._started.add(trial.trial_id)
            self.on_event(Event(TRIAL_START, trial.trial_id, trial_label(trial),
                                epochs=trial.epochs))

    def sink(self, event: Event) -> None:
        """Progress from a trial running in this process (epoch events)."""
        self.on_event(event)

    def end(self, trial: Trial, problem: str = "", detail: str = "",
            result: TrialResult | None = None, holder_dead: HolderCheck = None) -> TrialResult:
        """The trial's processes are gone: its outcome, from `result` or the store.

        `problem` says why it may have died without a row (e.g. an exit code);
        it becomes the `failed` row when the store has neither a finished state
        nor a failure of the trial's own. A lease whose holder the backend knows is dead
        (`holder_dead`: its host was lost, its Slurm job ended) is broken: that holder
        cannot record anything, and a re-run need not wait out its heartbeat.
        """
        if trial.trial_id in self.results:
            return self.results[trial.trial_id]
        self.start(trial)
        store = self.store(trial)
        if result is not None and result.skipped:
            return self._skip(trial, result)
        state = store.state(trial.milestones)
        if is_finished(state):
            outcome = TrialResult(trial.trial_id, state,
                                  weights_digest=result.weights_digest if result else "")
        elif (holder := self.live_holder(trial, holder_dead)) is not None:
            return self._skip(trial, TrialResult(
                trial.trial_id, STATE_BUSY, skipped=True,
                error=f"already being trained by {holder.describe()}"))
        elif state == schema.STATUS_FAILED:
            outcome = TrialResult(trial.trial_id, state, error=store.last_error())
        else:
            error = (result.error if result is not None and result.error else problem
                     or "the trial's processes ended before it finished")
            store.record_failure(config_columns(trial), error, detail or error)
            outcome = TrialResult(trial.trial_id, schema.STATUS_FAILED, error=error)
        self.results[trial.trial_id] = outcome
        self.on_event(Event(TRIAL_END, trial.trial_id, trial_label(trial),
                            epoch=max(store.ok_rows_or_empty(), default=0), epochs=trial.epochs,
                            status=outcome.status, message=outcome.error))
        return outcome

    def live_holder(self, trial: Trial, holder_dead: HolderCheck = None) -> LeaseHolder | None:
        """Who trains `trial` now; a lease the backend knows is dead is broken instead."""
        lease = self.store(trial).lease()
        holder = lease.live_holder()
        if holder is not None and holder_dead is not None and holder_dead(holder):
            lease.break_dead(holder)
            return None
        return holder

    def _skip(self, trial: Trial, result: TrialResult) -> TrialResult:
        self.results[trial.trial_id] = result
        self.on_event(Event(TRIAL_SKIP, trial.trial_id, trial_label(trial),
                            status=result.status, message=result.error))
        return result


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

    def check(self, trials: Sequence[Trial]) -> None:  # noqa: B027 - optional hook
        """What this backend can verify before any work (raise SpecError/GenbenchError)."""

    def launch(self, trials: Sequence[Trial], ctx: RunContext,
               on_event: EventSink = ignore_event) -> list[TrialResult]:
        """Run the trials; failed trials are results, not exceptions."""
        trials = list(trials)
        if not trials:
            return []
        self.check(trials)
        tracker = TrialTracker(ctx, on_event)
        todo = tracker.skip_finished(trials)
        if todo:
            self._start(todo, ctx, tracker)
            for t in todo:  # a backend that returned without news of a trial
                tracker.end(t, problem=f"the {self.name} launcher ended before the trial did")
        return [tracker.results[t.trial_id] for t in trials]

    @abstractmethod
    def _start(self, trials: list[Trial], ctx: RunContext, tracker: TrialTracker) -> None:
        """Start the trials' processes and wait for them, calling `tracker.start(trial)`
        and `tracker.end(trial, ...)` as each one starts and ends."""
