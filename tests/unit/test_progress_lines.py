"""Progress without a terminal: a log gets one timestamped line per epoch, milestone and
finished trial on stdout, at once, and one line per one-off preparation step."""

from __future__ import annotations

import re

from suite.cli.progress import RichProgress, announce
from suite.common.events import EPOCH_END, MILESTONE, TRIAL_END, TRIAL_START, Event

LINE = re.compile(r"^\[\d\d:\d\d:\d\d \+\d+m\d\ds\] ")


def test_plain_lines_for_a_log(capsys) -> None:
    with RichProgress("demo", 1, plain=True) as progress:
        progress.handle(Event(TRIAL_START, "abc123", "dcgan/transpose", epochs=2))
        progress.handle(Event(EPOCH_END, "abc123", "dcgan/transpose", epoch=1, epochs=2,
                              losses={"loss_g": 1.25}))
        progress.handle(Event(MILESTONE, "abc123", "dcgan/transpose", epoch=2, epochs=2,
                              metrics={"images_per_sec": 812.5, "fd_domain": 3.2,
                                       "mfu": 0.031}))
        progress.handle(Event(TRIAL_END, "abc123", "dcgan/transpose", status="ok"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), lines
    assert "epoch 1/2 loss_g=1.25" in lines[0]
    assert "milestone epoch 2: images_per_sec=812.5 fd_domain=3.2 mfu=0.031" in lines[1]
    assert lines[2].endswith("abc123 dcgan/transpose ok")


def test_a_terminal_gets_bars_not_lines(capsys) -> None:
    with RichProgress("demo", 1, plain=False, quiet=True) as progress:
        progress.handle(Event(EPOCH_END, "abc123", "dcgan/transpose", epoch=1, epochs=2))
    assert capsys.readouterr().out == ""


def test_announce_goes_to_the_log(capsys) -> None:
    announce("preparing the domain backbone for mnist (built once, then cached)")
    out = capsys.readouterr().out  # pytest's captured stdout is not a terminal
    assert re.match(r"^\[\d\d:\d\d:\d\d\] genbench: preparing the domain backbone", out)


def test_a_failure_or_busy_skip_stays_on_stderr(capsys) -> None:
    with RichProgress("demo", 1, plain=True, quiet=True) as progress:
        progress.handle(Event(TRIAL_END, "abc123", "dcgan/transpose", status="failed",
                              message="ValueError: boom"))
    captured = capsys.readouterr()
    assert "abc123 dcgan/transpose failed: ValueError: boom" in captured.err
    assert "boom" not in captured.out
