"""analysis tables and loader on synthetic result frames with known answers."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from analysis.load import TRIAL_DIR, ResultsWarning
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows

OK, DIVERGED = schema.STATUS_OK, schema.STATUS_DIVERGED


def row(model="dcgan", upsampling="transpose", seed=0, epoch=2, epochs=2, latent_dim=8,
        workers=1, status=OK, sweep="syn", timestamp="2026-01-01T00:00:00+00:00", **values):
    """One schema row; trial_id is derived from the configuration."""
    trial_id = f"{model}-{upsampling}-z{latent_dim}-w{workers}-s{seed}-e{epochs}"
    return {
        schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: sweep,
        schema.TRIAL_ID: trial_id, schema.TRIAL_INDEX: 0, schema.DATASET: "mnist",
        schema.MODEL: model, schema.UPSAMPLING: upsampling, schema.KERNEL_SIZE: 5,
        schema.LATENT_DIM: latent_dim, schema.EPOCHS: epochs, schema.EPOCH: epoch,
        schema.SEED: seed, schema.BATCH_SIZE: 32, schema.GLOBAL_BATCH_SIZE: 32 * workers,
        schema.WORKERS: workers, schema.LR: 2e-4, schema.LR_SCALING: "none",
        schema.MAX_TRAIN_IMAGES: 256, schema.STATUS: status, schema.TIMESTAMP: timestamp,
        **values,
    }


def frame(rows) -> pd.DataFrame:
    """Rows as the loader would return them (all schema columns, typed)."""
    df = pd.DataFrame(rows)
    for c in schema.COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df


# --- compare -------------------------------------------------------------------------------


def test_compare_mean_std_over_seeds_at_final_epoch():
    rows = [row(seed=s, **{schema.FD_DOMAIN: v, schema.IMAGES_PER_SEC: 100.0})
            for s, v in enumerate([10.0, 12.0, 14.0])]
    rows += [row(seed=s, epoch=1, **{schema.FD_DOMAIN: 99.0}) for s in range(3)]  # not final
    rows += [row(upsampling="nearest", seed=0, **{schema.FD_DOMAIN: 20.0})]
    rows += [row(model="vae", upsampling="nearest", seed=s, **{schema.FD_DOMAIN: v})
             for s, v in enumerate([1.0, 2.0])]
    rows += [row(model="vae", upsampling="nearest", seed=7, epoch=1, status=DIVERGED)]
    table = analysis.compare(frame(rows), rows=[schema.MODEL], cols=[schema.UPSAMPLING],
                             metric=schema.FD_DOMAIN)
    assert table.loc["dcgan", ("transpose", "mean")] == pytest.approx(12.0)
    assert table.loc["dcgan", ("transpose", "std")] == pytest.approx(2.0)  # sample std
    assert table.loc["dcgan", ("transpose", "n")] == 3
    assert table.loc["dcgan", ("nearest", "n")] == 1
    assert math.isnan(table.loc["dcgan", ("nearest", "std")])
    assert table.loc["vae", ("nearest", "mean")] == pytest.approx(1.5)
    assert table.loc["vae", ("nearest", "n")] == 2
    assert table.loc["vae", ("transpose", "n")] == 0  # no such trial

    text = analysis.format_mean_std(table)
    assert text.loc["dcgan", "transpose"] == "12 ± 2"
    assert text.loc["dcgan", "nearest"] == "20"
    assert text.loc["vae", "transpose"] == ""

    at_one = analysis.compare(frame(rows), [schema.MODEL], [], schema.FD_DOMAIN, at_epoch=1)
    assert at_one.loc["dcgan", "mean"] == pytest.approx(99.0)
    assert list(at_one.columns) == ["mean", "std", "n"]


def test_all_null_metric_is_skipped_not_an_error():
    rows = [row(seed=s, **{schema.IMAGES_PER_SEC: 10.0}) for s in range(2)]
    df = frame(rows)
    assert analysis.available_metrics(df) == []
    assert analysis.compare(df, [schema.MODEL], [schema.UPSAMPLING], schema.FD_DOMAIN).empty
    effect = analysis.upsampling_effect(df, [schema.FD_DOMAIN])
    assert effect.empty and schema.FD_DOMAIN in effect.attrs["skipped"]


# --- best configuration ---------------------------------------------------------------


def test_best_config_per_model_respects_direction():
    rows = []
    for seed in range(2):
        rows += [row(latent_dim=8, seed=seed, **{schema.FD_DOMAIN: 5.0 + seed,
                                                  schema.PRECISION_DOMAIN: 0.2}),
                 row(latent_dim=32, seed=seed, **{schema.FD_DOMAIN: 3.0 + seed,
                                                   schema.PRECISION_DOMAIN: 0.1}),
                 row(model="vae", latent_dim=8, seed=seed, **{schema.FD_DOMAIN: 9.0,
                                                               schema.PRECISION_DOMAIN: 0.5})]
    df = frame(rows)
    best = analysis.best_config(df, schema.FD_DOMAIN).set_index(schema.MODEL)
    assert best.loc["dcgan", schema.LATENT_DIM] == 32
    assert best.loc["dcgan", "mean"] == pytest.approx(3.5)
    assert best.loc["dcgan", "n"] == 2
    assert best.loc["vae", "mean"] == pytest.approx(9.0)
    higher = analysis.best_config(df, schema.PRECISION_DOMAIN).set_index(schema.MODEL)
    assert higher.loc["dcgan", schema.LATENT_DIM] == 8  # precision: higher is better
    flipped = analysis.best_config(df, schema.FD_DOMAIN, lower_is_better=False)
    assert flipped.set_index(schema.MODEL).loc["dcgan", schema.LATENT_DIM] == 8


# --- upsampling effect ------------------------------------------------------------------


def effect_frame(n_seeds: int, delta: float, ratio: float, noise: float, rng) -> pd.DataFrame:
    rows = []
    for seed in range(n_seeds):
        fd = 50.0 + 10.0 * rng.standard_normal()  # large between-seed spread: pairing matters
        ips = 400.0 * math.exp(0.3 * rng.standard_normal())
        rows.append(row(seed=seed, **{schema.FD_DOMAIN: fd, schema.IMAGES_PER_SEC: ips}))
        rows.append(row(upsampling="nearest", seed=seed, **{
            schema.FD_DOMAIN: fd + delta + noise * rng.standard_normal(),
            schema.IMAGES_PER_SEC: ips * ratio * math.exp(noise * 0.05 * rng.standard_normal())}))
    return frame(rows)


def test_upsampling_effect_recovers_a_known_paired_effect():
    df = effect_frame(40, delta=1.5, ratio=0.5, noise=0.0, rng=np.random.default_rng(1))
    out = analysis.upsampling_effect(df, [schema.FD_DOMAIN]).set_index("metric")
    fd, ips = out.loc[schema.FD_DOMAIN], out.loc[schema.IMAGES_PER_SEC]
    assert (fd["variant"], fd["kind"], fd["n_pairs"]) == ("nearest", "difference", 40)
    assert fd["estimate"] == pytest.approx(1.5)
    assert fd["ci_low"] == pytest.approx(1.5) and fd["ci_high"] == pytest.approx(1.5)
    assert ips["kind"] == "ratio"
    assert ips["estimate"] == pytest.approx(0.5)


def test_upsampling_effect_pairs_only_matching_trials():
    rows = [row(seed=0, **{schema.FD_DOMAIN: 10.0}),
            row(upsampling="nearest", seed=0, **{schema.FD_DOMAIN: 11.0}),
            row(upsampling="nearest", seed=1, **{schema.FD_DOMAIN: 50.0}),  # no baseline seed 1
            row(upsampling="nearest", seed=0, workers=2, **{schema.FD_DOMAIN: 70.0}),  # w differs
            row(upsampling="bilinear", seed=0, **{schema.FD_DOMAIN: 8.0})]
    out = analysis.upsampling_effect(frame(rows), [schema.FD_DOMAIN])
    out = out[out["metric"] == schema.FD_DOMAIN].set_index("variant")
    assert out.loc["nearest", "n_pairs"] == 1
    assert out.loc["nearest", "estimate"] == pytest.approx(1.0)
    assert math.isnan(out.loc["nearest", "ci_low"])  # one pair: no interval
    assert out.loc["bilinear", "estimate"] == pytest.approx(-2.0)
    by_model = analysis.upsampling_effect(frame(rows), [schema.FD_DOMAIN], by=[schema.MODEL])
    assert set(by_model[schema.MODEL]) == {"dcgan"}


def test_bootstrap_interval_covers_a_known_effect_about_95_percent():
    rng = np.random.default_rng(2024)
    delta, hits, runs = 0.7, 0, 100
    for _ in range(runs):
        df = effect_frame(40, delta=delta, ratio=0.8, noise=1.0, rng=rng)
        out = analysis.upsampling_effect(df, [schema.FD_DOMAIN], n_boot=1000)
        fd = out.set_index("metric").loc[schema.FD_DOMAIN]
        assert fd["ci_low"] < fd["estimate"] < fd["ci_high"]
        hits += fd["ci_low"] <= delta <= fd["ci_high"]
    coverage = hits / runs
    # percentile bootstrap with 40 pairs: nominal 0.95, a little under in practice
    # (this seed gives 0.94; 100 runs have a binomial sd of about 0.02)
    assert 0.88 <= coverage <= 0.99, coverage


def test_bootstrap_is_seeded():
    x = np.random.default_rng(0).standard_normal(30)
    assert analysis.bootstrap_mean(x, seed=3) == analysis.bootstrap_mean(x, seed=3)
    assert analysis.bootstrap_mean(x, seed=3) != analysis.bootstrap_mean(x, seed=4)


# --- scaling and Pareto ----------------------------------------------------------------


def test_scaling_speedup_and_efficiency():
    rows = []
    for workers, ips in [(1, 100.0), (2, 180.0), (4, 300.0)]:
        rows += [row(workers=workers, seed=0, **{schema.IMAGES_PER_SEC: ips - 10}),
                 row(workers=workers, seed=1, **{schema.IMAGES_PER_SEC: ips + 10})]
    rows += [row(model="vae", workers=2, **{schema.IMAGES_PER_SEC: 50.0})]  # no 1-worker run
    out = analysis.scaling(frame(rows))
    dcgan = out[out[schema.MODEL] == "dcgan"].set_index(schema.WORKERS)
    assert dcgan.loc[1, schema.IMAGES_PER_SEC] == pytest.approx(100.0)
    assert dcgan.loc[2, "speedup"] == pytest.approx(1.8)
    assert dcgan.loc[4, "speedup"] == pytest.approx(3.0)
    assert dcgan.loc[2, "efficiency"] == pytest.approx(0.9)
    assert dcgan.loc[4, "efficiency"] == pytest.approx(0.75)
    assert dcgan.loc[4, schema.IMAGES_PER_SEC_PER_WORKER] == pytest.approx(75.0)
    assert dcgan.loc[4, "n"] == 2
    vae = out[out[schema.MODEL] == "vae"]
    assert math.isnan(vae["speedup"].iloc[0])


def test_pareto_front_membership():
    points = {  # latent_dim -> (fd, images/s)
        8: (10.0, 100.0), 16: (12.0, 200.0), 32: (11.0, 150.0),
        64: (13.0, 150.0),  # beaten by 16: worse fd, slower
        128: (10.0, 90.0),  # beaten by 8: same fd, slower
    }
    rows = [row(latent_dim=z, seed=s, **{schema.FD_DOMAIN: fd, schema.IMAGES_PER_SEC: ips})
            for z, (fd, ips) in points.items() for s in range(2)]
    front = analysis.pareto_front(frame(rows), schema.FD_DOMAIN)
    assert list(front[schema.LATENT_DIM]) == [16, 32, 8]  # fastest first
    assert list(front["label"]) == ["dcgan/transpose z=16", "dcgan/transpose z=32",
                                    "dcgan/transpose z=8"]
    everything = analysis.pareto_front(frame(rows), schema.FD_DOMAIN, all_points=True)
    assert set(everything.loc[~everything["on_front"], schema.LATENT_DIM]) == {64, 128}
    # higher-is-better quality: 13 is now the best quality, 10 the worst
    high = analysis.pareto_front(frame(rows), schema.FD_DOMAIN, lower_is_better=False)
    assert set(high[schema.LATENT_DIM]) == {16, 64}


def test_trial_overview_statuses():
    rows = [row(seed=0, epoch=1), row(seed=0, epoch=2),
            row(seed=1, epoch=1),  # partial
            row(seed=2, epoch=1), row(seed=2, epoch=2, status=DIVERGED),
            row(seed=3, epoch=1, status=schema.STATUS_FAILED, **{schema.ERROR: "boom"})]
    out = analysis.trial_overview(frame(rows)).set_index(schema.SEED)
    assert list(out[schema.STATUS]) == ["ok", "partial", "diverged", "failed"]
    assert out.loc[3, schema.ERROR] == "boom"


# --- loading -------------------------------------------------------------------------------


def write_trial(root: Path, rows: list[dict]) -> Path:
    directory = trial_dir(root, rows[0][schema.SWEEP], rows[0][schema.TRIAL_ID])
    directory.mkdir(parents=True, exist_ok=True)
    write_rows(directory / RESULT_FILE, rows)
    return directory / RESULT_FILE


def test_load_deduplicates_by_trial_and_epoch_keeping_the_newest(tmp_path):
    old = [row(epoch=e, timestamp=f"2026-01-01T00:00:0{e}+00:00",
               **{schema.IMAGES_PER_SEC: 1.0}) for e in (1, 2)]
    new = [row(epoch=2, timestamp="2026-02-01T00:00:00+00:00", **{schema.IMAGES_PER_SEC: 2.0})]
    write_trial(tmp_path / "a", old)
    write_trial(tmp_path / "b", new)
    write_trial(tmp_path / "a", [row(model="vae", **{schema.SAMPLES_PNG: "samples/e.png"})])
    df = analysis.load_results(tmp_path / "a", tmp_path / "b", tmp_path / "a" / "syn")
    assert len(df) == 3  # 2 epochs of the dcgan trial + 1 vae row, each once
    assert not df.duplicated([schema.TRIAL_ID, schema.EPOCH]).any()
    final = df[(df[schema.MODEL] == "dcgan") & (df[schema.EPOCH] == 2)].iloc[0]
    assert final[schema.IMAGES_PER_SEC] == 2.0
    assert Path(final[TRIAL_DIR]).parts[-4] == "b"
    assert str(df[schema.LATENT_DIM].dtype) == "Int64"
    assert list(df.columns[:len(schema.COLUMNS)]) == list(schema.COLUMNS)
    vae = df[df[schema.MODEL] == "vae"].iloc[0]
    assert analysis.sample_path(vae) == Path(vae[TRIAL_DIR]) / "samples" / "e.png"
    assert analysis.sample_path(final) is None


def test_load_skips_corrupt_partial_and_foreign_files_with_a_warning(tmp_path):
    good = write_trial(tmp_path, [row(**{schema.IMAGES_PER_SEC: 5.0})])
    corrupt = write_trial(tmp_path, [row(seed=1)])
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated mid-file
    partial = write_trial(tmp_path, [row(seed=2)])
    pq.write_table(pa.table({schema.SCHEMA_VERSION_COL: [1], schema.STATUS: ["ok"]}), partial)
    foreign = write_trial(tmp_path, [row(seed=3, **{schema.SCHEMA_VERSION_COL: 99})])
    with pytest.warns(ResultsWarning) as record:
        df = analysis.load_results(tmp_path)
    messages = "\n".join(str(w.message) for w in record)
    for path in (corrupt, partial, foreign):
        assert str(path) in messages
    assert str(good) not in messages
    assert list(df[schema.SEED]) == [0]


def test_load_empty_and_missing_paths(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = analysis.load_results(tmp_path)
    assert df.empty and set(schema.COLUMNS) <= set(df.columns) and TRIAL_DIR in df
    with pytest.raises(FileNotFoundError, match="nope"):
        analysis.load_results(tmp_path / "nope")
