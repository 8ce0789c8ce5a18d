"""Rich progress display for `genbench run`: sweep, trial and epoch."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.common.events import EPOCH_END, TRIAL_END, TRIAL_SKIP, TRIAL_START, Event

STATUS_STYLE = {"ok": "green", "diverged": "yellow", "failed": "red"}


class RichProgress:
    """An EventSink that renders a sweep bar and the running trial's epoch bar."""

    def __init__(self, sweep: str, n_trials: int, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, disable=quiet, transient=False)
        self.sweep_task = self.progress.add_task(f"sweep {sweep}", total=n_trials)
        self.trial_tasks: dict[str, int] = {}  # trial id -> its epoch bar (Ray runs several)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def handle(self, event: Event) -> None:
        if event.kind == TRIAL_START and event.trial_id not in self.trial_tasks:
            self.trial_tasks[event.trial_id] = self.progress.add_task(
                f"  {event.label}", total=event.epochs)
        elif event.kind == EPOCH_END and event.trial_id in self.trial_tasks:
            losses = " ".join(f"{k}={v:.3g}" for k, v in event.losses.items())
            self.progress.update(self.trial_tasks[event.trial_id], completed=event.epoch,
                                 description=f"  {event.label} {losses}")
        elif event.kind in (TRIAL_END, TRIAL_SKIP):
            task = self.trial_tasks.pop(event.trial_id, None)
            if task is not None:
                self.progress.remove_task(task)
            self.progress.advance(self.sweep_task)
            if not self.quiet or event.message:  # a busy skip or a failure is news
                style = STATUS_STYLE.get(event.status, "white")
                if event.kind == TRIAL_SKIP:
                    verb = (f"skipped (already {event.status})" if not event.message
                            else f"skipped ({event.status})")
                else:
                    verb = event.status
                detail = f": {event.message}" if event.message else ""
                text = escape(f"{event.trial_id} {event.label} {verb}{detail}")
                self.console.print(f"[{style}]{text}[/]", highlight=False, soft_wrap=True)
