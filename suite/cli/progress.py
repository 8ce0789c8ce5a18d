"""Progress for `genbench run`: rich bars on a terminal; plain lines in a log.

When stdout is not a terminal (CI, `make run | tee`, a batch job's log) the bars would
print nothing until the end, so every epoch, milestone and finished trial is one
timestamped line on stdout instead, flushed at once.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.common.events import EPOCH_END, MILESTONE, TRIAL_END, TRIAL_SKIP, TRIAL_START, Event

STATUS_STYLE = {"ok": "green", "diverged": "yellow", "failed": "red"}


class RichProgress:
    """An EventSink that renders a sweep bar and the running trial's epoch bar."""

    def __init__(self, sweep: str, n_trials: int, quiet: bool = False,
                 plain: bool | None = None) -> None:
        self.plain = not sys.stdout.isatty() if plain is None else plain
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.started = time.monotonic()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, disable=quiet or self.plain,
                                 transient=False)
        self.sweep_task = self.progress.add_task(f"sweep {sweep}", total=n_trials)
        self.trial_tasks: dict[str, int] = {}  # trial id -> its epoch bar (Ray runs several)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def say(self, text: str) -> None:
        """One plain line on stdout: wall clock, time since the sweep started, the news."""
        elapsed = int(time.monotonic() - self.started)
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp} +{elapsed // 60}m{elapsed % 60:02d}s] {text}", flush=True)

    def handle(self, event: Event) -> None:
        if self.plain and not self.quiet:
            self.log_line(event)
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
                text = f"{event.trial_id} {event.label} {verb}{detail}"
                if self.plain and not event.message:  # problems stay on stderr, as before
                    self.say(text)
                else:
                    self.console.print(f"[{style}]{escape(text)}[/]", highlight=False,
                                       soft_wrap=True)

    def log_line(self, event: Event) -> None:
        """The plain line of an epoch or a milestone (the bars' news, for a log)."""
        if event.kind == EPOCH_END:
            losses = " ".join(f"{k}={v:.3g}" for k, v in event.losses.items())
            self.say(f"{event.trial_id} {event.label} epoch {event.epoch}/{event.epochs} "
                     f"{losses}")
        elif event.kind == MILESTONE:
            figures = " ".join(f"{k}={v:,.4g}" for k, v in event.metrics.items())
            self.say(f"{event.trial_id} {event.label} milestone epoch {event.epoch}: {figures}")


def announce(text: str) -> None:
    """A one-off step before training (e.g. a backbone trained once, then cached): on
    stdout in a log, where nothing else would show for minutes; on stderr on a terminal."""
    stream = sys.stdout if not sys.stdout.isatty() else sys.stderr
    print(f"[{time.strftime('%H:%M:%S')}] genbench: {text}", file=stream, flush=True)
