"""Noise floors in analysis: the floor table, who is within the floor, and the report
that shows floors beside each number and says when a model reaches one (pandas only)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import analysis
from analysis.floors import FLOOR_LABEL, floor_by_row, floor_column, within_floor
from analysis.report import write_report
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_analysis_tables import frame, row  # noqa: E402  (the shared row builder)

FLOORS = {schema.FD_DOMAIN_FLOOR: 2.0, schema.KID_DOMAIN_FLOOR: 0.001,
          schema.PRECISION_DOMAIN_FLOOR: 0.75, schema.RECALL_DOMAIN_FLOOR: 0.74,
          schema.DENSITY_DOMAIN_FLOOR: 1.01, schema.COVERAGE_DOMAIN_FLOOR: 0.87,
          schema.N_FLOOR: 1000.0, schema.EVAL_SPLIT: "test"}


def rows_with_floors() -> list[dict]:
    """dcgan reaches the FD floor (1.5, 1.9 < 2.0 on average); vae does not (5, 6)."""
    rows = []
    for seed, (good, bad) in enumerate([(1.5, 5.0), (1.9, 6.0)]):
        for model, fd in (("dcgan", good), ("vae", bad)):
            values = {schema.FD_DOMAIN: fd, schema.FD_DOMAIN_INF: fd - 0.3,
                      schema.KID_DOMAIN: 0.01 * fd, schema.DENSITY_DOMAIN: 0.9,
                      schema.COVERAGE_DOMAIN: 0.8, schema.IMAGES_PER_SEC: 100.0, **FLOORS}
            rows.append(row(model=model, seed=seed, **values))
            rows.append(row(model=model, seed=seed, epoch=1,
                            **{**values, schema.FD_DOMAIN: 3 * fd}))
    return rows


def test_floor_columns_follow_the_metric_names() -> None:
    assert floor_column(schema.FD_DOMAIN) == schema.FD_DOMAIN_FLOOR
    assert floor_column(schema.FID_INCEPTION) == schema.FID_INCEPTION_FLOOR
    assert floor_column(schema.DENSITY_INCEPTION) == schema.DENSITY_INCEPTION_FLOOR
    assert floor_column(schema.SPECTRAL_DISTANCE) is None


def test_floor_table_and_within_floor() -> None:
    df = frame(rows_with_floors())
    table = analysis.floor_table(df, analysis.QUALITY_METRICS)
    assert len(table) == 1 and table[schema.N_FLOOR].iloc[0] == 1000
    assert table[schema.FD_DOMAIN_FLOOR].iloc[0] == 2.0
    assert schema.COVERAGE_DOMAIN_FLOOR in table and schema.FID_INCEPTION_FLOOR not in table
    inside = within_floor(df, schema.FD_DOMAIN, [schema.MODEL])
    assert inside[schema.MODEL].tolist() == ["dcgan"]
    assert inside[schema.FD_DOMAIN].iloc[0] == 1.7 and inside["n"].iloc[0] == 2
    assert within_floor(df, schema.KID_DOMAIN, [schema.MODEL]).empty  # 0.017 > 0.001
    # Higher-is-better scores have floors too, but "within" is said of distances only.
    assert within_floor(df, schema.COVERAGE_DOMAIN, [schema.MODEL]).empty
    floors = floor_by_row(df, [schema.MODEL], schema.FD_DOMAIN)
    assert floors.to_dict() == {"dcgan": 2.0, "vae": 2.0}
    assert floor_by_row(df, [schema.MODEL], schema.SPECTRAL_DISTANCE).empty


def test_results_without_floors_have_no_floor_table() -> None:
    df = frame([row(**{schema.FD_DOMAIN: 3.0})])
    assert analysis.floor_table(df, analysis.QUALITY_METRICS).empty
    assert within_floor(df, schema.FD_DOMAIN, [schema.MODEL]).empty


def test_report_shows_floors_and_who_is_within_them(tmp_path) -> None:
    rows = rows_with_floors()
    for r in rows:
        directory = trial_dir(tmp_path / "results", "syn", r[schema.TRIAL_ID])
        directory.mkdir(parents=True, exist_ok=True)
    for trial_id in {r[schema.TRIAL_ID] for r in rows}:
        write_rows(trial_dir(tmp_path / "results", "syn", trial_id) / RESULT_FILE,
                   [r for r in rows if r[schema.TRIAL_ID] == trial_id])
    write_report([tmp_path / "results" / "syn"], tmp_path / "report", ["md", "html"])
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Noise floors (real vs real)" in md
    assert f"`fd_domain` at the final epoch (lower is better); last column: its {FLOOR_LABEL}" \
        in md
    assert f"Within the {FLOOR_LABEL} (n=1000 per side) on `fd_domain`" in md
    assert "indistinguishable from real data" in md and "dcgan transpose" in md
    assert f"No configuration's `kid_domain` is within its {FLOOR_LABEL}" in md
    assert "`fd_domain_inf` at the final epoch (lower is better)" in md
    assert "`density_domain` at the final epoch (higher is better)" in md
    fd_table = md.split("`fd_domain` at the final epoch")[1].split("\n\n")[1]
    assert FLOOR_LABEL in fd_table.splitlines()[0] and "| 2 |" in fd_table
    assert (tmp_path / "report" / "figures" / "epochs_fd_domain.png").is_file()


def test_report_without_floors_is_unchanged_in_wording(tmp_path) -> None:
    df = frame([row(**{schema.FD_DOMAIN: 3.0, schema.IMAGES_PER_SEC: 1.0})])
    assert isinstance(df, pd.DataFrame)
    directory = trial_dir(tmp_path / "r", "syn", df[schema.TRIAL_ID].iloc[0])
    directory.mkdir(parents=True)
    write_rows(directory / RESULT_FILE,
               [{k: v for k, v in r.items() if not (isinstance(v, float) and np.isnan(v))}
                for r in df.to_dict("records")])
    write_report([tmp_path / "r" / "syn"], tmp_path / "out", ["md"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "`fd_domain` at the final epoch (lower is better)\n" in md.replace("**", "")
    assert FLOOR_LABEL not in md
