"""The aggregated report's pieces on frames with known answers: t-intervals, the
O(n log n) Pareto front against the n x n definition, best and worst configurations,
and the layout threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.configurations import (
    LABEL,
    RANK,
    configuration_keys,
    configuration_table,
    extreme_configurations,
)
from analysis.intervals import format_mean_ci, mean_ci_text, t_interval
from analysis.layout import AGGREGATE_ABOVE, Layout
from analysis.overview import trial_overview
from analysis.tables import compare, non_dominated
from suite.store import schema


def rows(configs: dict[tuple[str, str, int], list[float]]) -> pd.DataFrame:
    """Final-epoch ok rows, one per seed, of (model, upsampling, latent_dim) -> fd per seed."""
    out = []
    for (model, up, z), values in configs.items():
        for seed, fd in enumerate(values):
            out.append({schema.TRIAL_ID: f"{model}-{up}-{z}-{seed}", schema.MODEL: model,
                        schema.UPSAMPLING: up, schema.LATENT_DIM: z, schema.SEED: seed,
                        schema.EPOCH: 2, schema.EPOCHS: 2, schema.STATUS: schema.STATUS_OK,
                        schema.ERROR: None, schema.FD_DOMAIN: fd,
                        schema.IMAGES_PER_SEC: 100.0 + fd})
    return pd.DataFrame(out)


def test_t_interval_matches_scipy():
    x = np.array([3.1, 2.7, 3.9, 3.3, 2.2])
    low, high = t_interval(x.mean(), x.std(ddof=1), len(x), 0.95)
    want = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert np.allclose([low, high], want)
    low, high = t_interval(5.0, np.nan, 1)
    assert np.isnan(low) and np.isnan(high)  # one seed: no interval
    assert mean_ci_text(5.0, np.nan, 1) == "5"
    assert mean_ci_text(np.nan, 1.0, 3) == ""


def test_format_mean_ci_of_a_compare_table():
    df = rows({("dcgan", "transpose", 8): [10.0, 12.0, 14.0], ("vae", "nearest", 8): [1.5]})
    text = format_mean_ci(compare(df, [schema.MODEL], [schema.UPSAMPLING], schema.FD_DOMAIN))
    low, high = stats.t.interval(0.95, 2, loc=12.0, scale=2.0 / np.sqrt(3))
    assert text.loc["dcgan", "transpose"] == f"12 [{low:.4g}, {high:.4g}]"
    assert text.loc["vae", "nearest"] == "1.5" and text.loc["dcgan", "nearest"] == ""


@pytest.mark.parametrize("n", [1, 2, 7, 40, 300])
def test_non_dominated_equals_the_pairwise_definition(n):
    rng = np.random.default_rng(n)
    q, t = rng.integers(0, 6, n).astype(float), rng.integers(0, 6, n).astype(float)
    no_worse = (q[None, :] <= q[:, None]) & (t[None, :] >= t[:, None])
    better = (q[None, :] < q[:, None]) | (t[None, :] > t[:, None])
    assert (non_dominated(q, t) == ~(no_worse & better).any(axis=1)).all()


def test_best_and_worst_configurations_per_model():
    fd = {("dcgan", "transpose", z): [float(z), float(z) + 1] for z in (1, 2, 3, 4, 5, 6, 7)}
    fd |= {("vae", "nearest", z): [10.0 * z] for z in (1, 2)}  # fewer than 2k: each once
    df = rows(fd)
    keys = configuration_keys(df)
    assert keys == [schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM]
    table = configuration_table(df, trial_overview(df), keys, [schema.FD_DOMAIN])
    assert len(table) == 9 and set(table["trials"]) == {1, 2}
    picked = extreme_configurations(table, schema.FD_DOMAIN, k=3)
    dcgan = picked[picked[schema.MODEL] == "dcgan"]
    assert list(dcgan[RANK]) == ["best 1", "best 2", "best 3", "worst 3", "worst 2", "worst 1"]
    assert list(dcgan[schema.LATENT_DIM]) == [1, 2, 3, 5, 6, 7]
    assert list(dcgan[LABEL])[0] == "dcgan/transpose z=1"
    vae = picked[picked[schema.MODEL] == "vae"]
    assert list(vae[RANK]) == ["best 1", "best 2"] and list(vae[schema.LATENT_DIM]) == [1, 2]
    row = table.set_index(LABEL).loc["dcgan/transpose z=4"]
    low, high = stats.t.interval(0.95, 1, loc=4.5, scale=np.std([4.0, 5.0], ddof=1) / np.sqrt(2))
    assert np.isclose(row[f"{schema.FD_DOMAIN}_ci_low"], low)
    assert np.isclose(row[f"{schema.FD_DOMAIN}_ci_high"], high)


def test_layout_aggregates_above_the_threshold_only():
    assert not Layout(AGGREGATE_ABOVE).aggregate and Layout(AGGREGATE_ABOVE).inline_images
    assert Layout(AGGREGATE_ABOVE + 1).aggregate and not Layout(AGGREGATE_ABOVE + 1).inline_images
    assert Layout(5, aggregate_above=4).aggregate
