"""The report's figures mean what they say: no "95%" interval from two pairs, and a
floor comparison that a configuration can meet when KID's floor is negative."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis
from analysis.effects import MIN_PAIRS
from analysis.floors import THRESHOLD_LABEL, within_floor, within_floor_sentence
from analysis.sections import effect_section, untrusted_peak_note
from suite.store import schema


def row(model="dcgan", upsampling="transpose", seed=0, **values) -> dict:
    return {schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: "syn",
            schema.TRIAL_ID: f"{model}-{upsampling}-s{seed}", schema.TRIAL_INDEX: 0,
            schema.DATASET: "mnist", schema.MODEL: model, schema.UPSAMPLING: upsampling,
            schema.KERNEL_SIZE: 5, schema.LATENT_DIM: 8, schema.EPOCHS: 2, schema.EPOCH: 2,
            schema.SEED: seed, schema.BATCH_SIZE: 32, schema.WORKERS: 1, schema.LR: 2e-4,
            schema.STATUS: schema.STATUS_OK, schema.TIMESTAMP: "2026-01-01T00:00:00+00:00",
            **values}


def frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    missing = pd.DataFrame(np.nan, index=df.index, columns=[c for c in schema.COLUMNS
                                                             if c not in df])
    return pd.concat([df, missing], axis=1)


def paired(fd_pairs: list[tuple[float, float]]) -> pd.DataFrame:
    rows = []
    for seed, (base, variant) in enumerate(fd_pairs):
        rows.append(row(seed=seed, **{schema.FD_DOMAIN: base, schema.IMAGES_PER_SEC: 100.0}))
        rows.append(row(upsampling="nearest", seed=seed,
                        **{schema.FD_DOMAIN: variant, schema.IMAGES_PER_SEC: 80.0 + seed}))
    return frame(rows)


def test_two_pairs_give_no_interval_and_the_report_says_why():
    df = paired([(100.0, 50.0), (90.0, 46.0)])  # the case: n_pairs=2
    out = analysis.upsampling_effect(df, [schema.FD_DOMAIN]).set_index("metric")
    fd = out.loc[schema.FD_DOMAIN]
    assert fd["n_pairs"] == 2 and fd["estimate"] == pytest.approx(-47.0)
    assert math.isnan(fd["ci_low"]) and math.isnan(fd["ci_high"])
    section = effect_section(df, [schema.FD_DOMAIN])
    text = " ".join(getattr(b, "text", "") for b in section.blocks)
    assert f"fewer than {MIN_PAIRS} pairs" in text and "12.7" in text
    (table, *_) = [b.df for b in section.blocks if hasattr(b, "df")]
    assert set(table["95% t-interval"]) == {f"(n < {MIN_PAIRS})"}


def test_three_pairs_give_the_student_t_interval():
    df = paired([(100.0, 50.0), (90.0, 46.0), (80.0, 60.0)])
    fd = analysis.upsampling_effect(df, [schema.FD_DOMAIN]).set_index("metric").loc[
        schema.FD_DOMAIN]
    d = np.array([-50.0, -44.0, -20.0])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert fd["ci_low"] == pytest.approx(d.mean() - half)
    assert fd["ci_high"] == pytest.approx(d.mean() + half)


def floored(kid: float, floor: float, std: float | None = None) -> pd.DataFrame:
    extra = {} if std is None else {schema.KID_DOMAIN_STD: std}
    return frame([row(seed=s, **{schema.KID_DOMAIN: kid, schema.KID_DOMAIN_FLOOR: floor,
                                 schema.N_FLOOR: 1000, **extra}) for s in range(2)])


def test_a_negative_kid_floor_can_be_met():
    """KID is unbiased: real-vs-real lands around zero, here -0.19; "at or below -0.19"
    could never be met by any generator."""
    inside = within_floor(floored(0.05, -0.19), schema.KID_DOMAIN, [schema.MODEL])
    assert inside[schema.MODEL].tolist() == ["dcgan"]
    assert inside[THRESHOLD_LABEL].iloc[0] == pytest.approx(0.19)
    assert within_floor(floored(0.5, -0.19), schema.KID_DOMAIN, [schema.MODEL]).empty
    # the estimate's own spread over subsets widens the band
    widened = within_floor(floored(0.25, -0.19, std=0.1), schema.KID_DOMAIN, [schema.MODEL])
    assert widened[THRESHOLD_LABEL].iloc[0] == pytest.approx(0.29) and len(widened) == 1
    sentence = within_floor_sentence(floored(0.05, -0.19), schema.KID_DOMAIN, [schema.MODEL])
    assert sentence.startswith("Within the") and "|floor|" in sentence


def test_fd_keeps_at_or_below_its_positive_floor():
    df = frame([row(**{schema.FD_DOMAIN: 2.5, schema.FD_DOMAIN_FLOOR: 2.0})])
    assert within_floor(df, schema.FD_DOMAIN, [schema.MODEL]).empty


def test_the_report_flags_mfu_divided_by_a_lower_bound():
    rows = [row(**{schema.MFU: 0.4, schema.PEAK_TRUSTED: True,
                   schema.PEAK_BASIS: "calibrated"}),
            row(upsampling="nearest", **{schema.MFU: 1.0, schema.PEAK_TRUSTED: False,
                                         schema.PEAK_BASIS: "raised_to_achieved"})]
    note = untrusted_peak_note(frame(rows))
    assert note.startswith("1 of 2 final rows") and "raised_to_achieved" in note
    assert untrusted_peak_note(frame(rows[:1])) is None
