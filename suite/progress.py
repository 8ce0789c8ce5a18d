"""Rich progress display for `genbench run`: sweep, trial and epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.events import EPOCH_END, TRIAL_END, TRIAL_SKIP, TRIAL_START, Event

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
        self.trial_task = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def handle(self, event: Event) -> None:
        if event.kind == TRIAL_START:
            self.trial_task = self.progress.add_task(f"  {event.label}", total=event.epochs)
        elif event.kind == EPOCH_END and self.trial_task is not None:
            losses = " ".join(f"{k}={v:.3g}" for k, v in event.losses.items())
            self.progress.update(self.trial_task, completed=event.epoch,
                                 description=f"  {event.label} {losses}")
        elif event.kind in (TRIAL_END, TRIAL_SKIP):
            if self.trial_task is not None:
                self.progress.remove_task(self.trial_task)
                self.trial_task = None
            self.progress.advance(self.sweep_task)
            if not self.quiet:
                style = STATUS_STYLE.get(event.status, "white")
                verb = "skipped (already " + event.status + ")" if event.kind == TRIAL_SKIP \
                    else event.status
                detail = f": {event.message}" if event.message else ""
                self.console.print(f"[{style}]{event.trial_id} {event.label} {verb}{detail}[/]")
