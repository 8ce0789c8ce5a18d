"""`genbench report --aggregate-above N`: the CLI's default is the report's own threshold,
and a negative N is refused before anything is read."""

from __future__ import annotations

from analysis.layout import AGGREGATE_ABOVE
from suite.cli.main import build_parser, main


def test_the_flag_defaults_to_the_reports_threshold() -> None:
    args = build_parser(launcher_options=False).parse_args(["report", "somewhere"])
    assert args.aggregate_above == AGGREGATE_ABOVE


def test_a_negative_threshold_is_refused(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path), "--aggregate-above", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--aggregate-above" in err and "fix:" in err and "Traceback" not in err
