"""analysis.time_to_target on synthetic result frames with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.time_to_target import IMAGES_SEEN, REACHED, default_target, time_to_target_table
from suite.store import schema


def trial_rows(upsampling: str, seed: int, fd: list[float], seconds: list[float],
               steps_per_epoch: int = 10, batch: int = 32, status: str = schema.STATUS_OK,
               model: str = "dcgan") -> list[dict]:
    """One row per milestone (epochs 1..n) with cumulative train_time_s and steps."""
    n = len(fd)
    trial_id = f"{model}-{upsampling}-s{seed}"
    return [{schema.SWEEP: "syn", schema.TRIAL_ID: trial_id, schema.DATASET: "mnist",
             schema.MODEL: model, schema.UPSAMPLING: upsampling, schema.SEED: seed,
             schema.LATENT_DIM: 8, schema.EPOCHS: n, schema.EPOCH: e + 1,
             schema.STATUS: status, schema.FD_DOMAIN: fd[e],
             schema.TRAIN_TIME_S: seconds[e], schema.STEPS: steps_per_epoch * (e + 1),
             schema.GLOBAL_BATCH_SIZE: batch, schema.WALL_TIME_S: seconds[e] + 1.0}
            for e in range(n)]


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    absent = [c for c in schema.COLUMNS if c not in df]
    return pd.concat([df, pd.DataFrame(np.nan, index=df.index, columns=absent)], axis=1)


def test_first_milestone_reaching_target_gives_time_and_images():
    df = frame(trial_rows("transpose", 0, [30.0, 12.0, 9.0, 8.0], [5.0, 9.0, 14.0, 20.0])
               + trial_rows("nearest", 0, [40.0, 35.0, 31.0, 30.5], [6.0, 12.0, 18.0, 24.0]))
    table = analysis.time_to_target(df, schema.FD_DOMAIN, 10.0).set_index(schema.UPSAMPLING)
    t = table.loc["transpose"]
    assert t[REACHED] and t[schema.EPOCH] == 3 and t[schema.FD_DOMAIN] == 9.0
    assert t[schema.TRAIN_TIME_S] == 14.0  # cumulative at epoch 3, not epoch 3's own time
    assert t[IMAGES_SEEN] == 30 * 32
    assert t[schema.WALL_TIME_S] == 15.0
    never = table.loc["nearest"]
    assert not never[REACHED]
    assert math.isnan(never[schema.TRAIN_TIME_S]) and math.isnan(never[IMAGES_SEEN])
    assert math.isnan(never[schema.EPOCH])


def test_exact_hit_counts_and_direction_follows_the_metric():
    df = frame(trial_rows("transpose", 0, [30.0, 10.0, 9.0], [1.0, 2.0, 3.0]))
    assert analysis.time_to_target(df, schema.FD_DOMAIN, 10.0)[schema.EPOCH].iloc[0] == 2
    # precision: higher is better, so the target is reached when the value is >= it
    df[schema.PRECISION_DOMAIN] = [0.2, 0.5, 0.9]
    got = analysis.time_to_target(df, schema.PRECISION_DOMAIN, 0.8)
    assert got[schema.EPOCH].iloc[0] == 3 and got[schema.TRAIN_TIME_S].iloc[0] == 3.0
    flipped = analysis.time_to_target(df, schema.PRECISION_DOMAIN, 0.3, lower_is_better=True)
    assert flipped[schema.EPOCH].iloc[0] == 1


def test_rows_out_of_order_failed_rows_and_unknown_direction():
    rows = trial_rows("transpose", 0, [30.0, 12.0, 9.0], [5.0, 9.0, 14.0])
    rows[1] = {**rows[1], schema.STATUS: schema.STATUS_FAILED}  # epoch 2 failed: ignored
    df = frame(rows[::-1])
    got = analysis.time_to_target(df, schema.FD_DOMAIN, 12.0)
    assert got[schema.EPOCH].iloc[0] == 3 and got[schema.TRAIN_TIME_S].iloc[0] == 14.0
    with pytest.raises(ValueError, match="direction"):
        analysis.time_to_target(df, "no_such_metric_direction", 1.0)


def test_per_variant_table_means_over_seeds_that_reached():
    df = frame(trial_rows("transpose", 0, [20.0, 9.0], [4.0, 8.0])
               + trial_rows("transpose", 1, [9.0, 8.0], [6.0, 12.0])
               + trial_rows("nearest", 0, [20.0, 9.5], [5.0, 10.0])
               + trial_rows("nearest", 1, [20.0, 15.0], [5.0, 10.0])
               + trial_rows("bilinear", 0, [50.0, 40.0], [1.0, 2.0]))
    table = time_to_target_table(df, schema.FD_DOMAIN, 10.0).set_index(schema.UPSAMPLING)
    assert table.loc["transpose", REACHED] == "2/2"
    assert table.loc["transpose", schema.TRAIN_TIME_S] == pytest.approx(7.0)  # (8 + 6) / 2
    assert table.loc["transpose", IMAGES_SEEN] == pytest.approx((20 + 10) * 32 / 2)
    assert table.loc["nearest", REACHED] == "1/2"
    assert table.loc["nearest", schema.TRAIN_TIME_S] == 10.0
    assert table.loc["bilinear", REACHED] == "0/1"
    assert math.isnan(table.loc["bilinear", schema.TRAIN_TIME_S])
    assert table.attrs["target"] == 10.0


def test_default_target_is_median_of_best_values():
    df = frame(trial_rows("transpose", 0, [20.0, 9.0], [4.0, 8.0])
               + trial_rows("nearest", 0, [12.0, 15.0], [5.0, 10.0])
               + trial_rows("bilinear", 0, [50.0, 40.0], [1.0, 2.0]))
    assert default_target(df, schema.FD_DOMAIN) == 12.0
    assert math.isnan(default_target(df.iloc[0:0], schema.FD_DOMAIN))


def test_missing_metric_column_is_a_key_error_and_no_values_is_empty():
    df = frame(trial_rows("transpose", 0, [20.0, 9.0], [4.0, 8.0]))
    with pytest.raises(KeyError):
        analysis.time_to_target(df.drop(columns=schema.FD_DOMAIN), schema.FD_DOMAIN, 1.0)
    assert analysis.time_to_target(df, schema.KID_DOMAIN, 1.0).empty
    assert time_to_target_table(df, schema.KID_DOMAIN, 1.0).empty


def test_size_table_and_cost_plots(tmp_path):
    from analysis.cost_plots import plot_against_params, plot_metric_vs_time, size_table
    rows = []
    for width, params, seconds in ((0.5, 1000, [2.0, 4.0]), (1.0, 4000, [5.0, 10.0])):
        for r in trial_rows("transpose", 0, [20.0, 9.0 * width], seconds):
            rows.append({**r, schema.TRIAL_ID: f"w{width}", schema.WIDTH: width,
                         schema.DEPTH: 1, schema.PARAMS_TOTAL: params,
                         schema.IMAGES_PER_SEC: 100.0 / width})
    df = frame(rows)
    table = size_table(df, [schema.FD_DOMAIN, schema.IMAGES_PER_SEC])
    assert table[schema.PARAMS_TOTAL].tolist() == [1000, 4000]
    assert table[schema.FD_DOMAIN].tolist() == [4.5, 9.0]  # final epoch only
    assert table[schema.IMAGES_PER_SEC].tolist() == [200.0, 100.0]
    for path in (plot_metric_vs_time(df, schema.FD_DOMAIN, tmp_path / "t.png", target=10.0),
                 plot_against_params(df, [schema.FD_DOMAIN], tmp_path / "p.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert size_table(df.drop(columns=schema.PARAMS_TOTAL), [schema.FD_DOMAIN]).empty
