"""plan, show, status, collect and load_results at sweep scale: bounded tables, script
formats, a consolidated dataset, and the parallel loader equal to the one-file-at-a-time one."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from analysis import load
from suite.cli.collect import MARKER, collect_sweep
from suite.cli.main import main
from suite.cli.tables import TABLE_ROWS
from suite.store import schema
from suite.store.results import RESULT_FILE, trial_dir, write_rows
from suite.store.status import sweep_status
from suite.store.trial_store import TrialStore

MODELS = ("dcgan", "vae", "cgan", "cvae")


def big_sweep(tmp_path: Path, seeds: int = 15) -> Path:
    """4 models x 2 upsamplings x `seeds` seeds (120 trials by default), epochs 1 and 2."""
    path = tmp_path / "big.yaml"
    path.write_text("name: big\ndataset: mnist\ngrid:\n  model: [dcgan, vae, cgan, cvae]\n"
                    "  upsampling: [transpose, nearest]\n"
                    f"  seed: [{', '.join(map(str, range(seeds)))}]\n  epochs: [1, 2]\n"
                    "fixed:\n  max_train_images: 512\n  batch_size: 32\n"
                    "eval:\n  n_samples: 1000\n")
    return path


def test_plan_of_a_big_sweep_is_bounded_unless_all(tmp_path, capsys):
    sweep = big_sweep(tmp_path)
    assert main(["plan", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "big: 120 trials" in out and "seed" in out and "cost: about" in out
    assert "estimate" in out and "first and last 20 of 120 trials" in out
    listed = [line for line in out.splitlines() if line.startswith("│ ") and "mnist" in line]
    assert len(listed) == TABLE_ROWS and "│ 119 " in out and "│ 60 " not in out
    assert main(["plan", str(sweep), "--all"]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("│ ") and "mnist" in line for line in out.splitlines()) == 120


def test_plan_of_a_small_sweep_lists_every_trial(capsys):
    assert main(["plan", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "smoke: 8 trials" in out and "first and last" not in out
    assert sum(line.startswith("│ ") and "mnist" in line for line in out.splitlines()) == 8


def test_plan_json_and_csv_hold_every_trial_with_its_id(tmp_path, capsys):
    from suite.sweep.loader import load_sweep

    sweep = big_sweep(tmp_path)
    trials = load_sweep(str(sweep)).trials
    assert main(["plan", str(sweep), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trials"] == 120 and len(doc["records"]) == 120
    assert [r["trial_id"] for r in doc["records"]] == [t.trial_id for t in trials]
    assert doc["axes"]["model"] == list(MODELS) and doc["axes"]["epochs"] == [1, 2]
    assert doc["estimate"]["machine_hours"] > 0 and doc["records"][0]["milestones"] == [1, 2]
    assert main(["plan", str(sweep), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 120 and rows[5]["trial_id"] == trials[5].trial_id
    assert rows[5]["milestones"] == "1 2" and rows[5]["model"] == trials[5].model
    frame = pd.read_csv(io.StringIO(_csv_text(sweep, capsys)))
    assert frame["seed"].nunique() == 15


def _csv_text(sweep: Path, capsys) -> str:
    assert main(["plan", str(sweep), "--format", "csv"]) == 0
    return capsys.readouterr().out


def test_cost_estimate_scales_with_images_and_width():
    from suite.cli.cost import PER_STEP_S, estimate_cost, table_step_time, trial_seconds
    from suite.sweep.loader import load_sweep

    (trial,) = load_sweep("smoke").trials[:1]
    half = trial.__class__(**{**{f: getattr(trial, f) for f in trial.__dataclass_fields__},
                              "width": trial.width / 2})
    # the convolution work per step scales with width^2; the step's own overhead does not
    work = lambda t: table_step_time(t).seconds_per_step - PER_STEP_S  # noqa: E731
    assert work(half) == pytest.approx(work(trial) / 4)
    cost = estimate_cost([trial, trial])
    assert cost.machine_hours * 3600 == pytest.approx(
        2 * trial_seconds(trial, table_step_time(trial)))
    assert cost.images == 2 * trial.epochs * trial.max_train_images


# --- a generated multi-trial results directory ----------------------------------------------


def write_sweep(root: Path, n: int = 60) -> Path:
    """n trials of sweep `gen`: 2 ok milestones each, trial 3 failed, trial 7 partial."""
    for i in range(n):
        trial_id = f"t{i:04d}"
        store = TrialStore(root, "gen", trial_id)
        store.directory.mkdir(parents=True)
        store.write_config({"index": i, "workers": 1, "milestones": [1, 2]})
        base = {schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: "gen",
                schema.TRIAL_ID: trial_id, schema.TRIAL_INDEX: i, schema.EPOCHS: 2,
                schema.MODEL: MODELS[i % 4], schema.SEED: i, schema.DATASET: "mnist",
                schema.TIMESTAMP: "2026-01-01T00:00:00+00:00"}
        epochs = (1,) if i == 7 else (1, 2)
        rows = [{**base, schema.EPOCH: e, schema.STATUS: schema.STATUS_OK,
                 schema.FD_DOMAIN: float(i + e), schema.SAMPLES_PNG: f"samples/{e}.png"}
                for e in epochs]
        if i == 3:
            rows[-1] = {**rows[-1], schema.STATUS: schema.STATUS_FAILED, schema.ERROR: "boom"}
        store.write_rows(rows)
    return root / "gen"


def old_load(*paths) -> pd.DataFrame:
    """The loader as it was: one file at a time, one frame per file, no cache."""
    seen, frames = set(), []
    for p in paths:
        for f in sorted(Path(p).rglob(RESULT_FILE)):
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            table = load._read_checked(str(f))[0]
            if table is not None:
                frames.append(table.to_pandas().assign(**{load.TRIAL_DIR: str(f.resolve().parent)}))
    return load._deduplicate(load._conform(pd.concat(frames, ignore_index=True)))


def test_parallel_loader_equals_the_one_file_at_a_time_loader(tmp_path):
    sweep = write_sweep(tmp_path)
    extra = trial_dir(tmp_path, "gen", "t0001") / RESULT_FILE  # an older writer's file
    write_rows(extra, [{schema.SCHEMA_VERSION_COL: schema.SCHEMA_VERSION, schema.SWEEP: "gen",
                        schema.TRIAL_ID: "t0001", schema.TRIAL_INDEX: 1, schema.EPOCHS: 2,
                        schema.EPOCH: 1, schema.STATUS: schema.STATUS_OK}])
    new = load.load_results(sweep)
    pd.testing.assert_frame_equal(new, old_load(sweep))
    assert len(new) == 60 * 2 - 1 - 1 and new[load.TRIAL_DIR].str.endswith("t0059").any()
    assert str(new[schema.TRIAL_INDEX].dtype) == "Int64"


def test_row_cache_gives_the_files_rows_and_follows_every_rewrite(tmp_path):
    from suite.store.row_cache import CACHE_FILE, CACHE_MIN_FILES

    sweep = write_sweep(tmp_path, n=CACHE_MIN_FILES + 20)
    first = load.load_results(sweep, deduplicate=False)
    assert (sweep / CACHE_FILE).is_file()
    pd.testing.assert_frame_equal(first, load.load_results(sweep, deduplicate=False))
    pd.testing.assert_frame_equal(load.load_results(sweep), old_load(sweep))
    store = TrialStore(tmp_path, "gen", "t0005")  # a run rewrites one trial meanwhile
    rows = store.rows()
    store.write_rows([{**r, schema.FD_DOMAIN: -1.0} for r in rows])
    after = load.load_results(sweep)
    pd.testing.assert_frame_equal(after, old_load(sweep))
    assert list(after.loc[after[schema.TRIAL_ID] == "t0005", schema.FD_DOMAIN]) == [-1.0, -1.0]
    TrialStore(tmp_path, "gen", "t0006").result_path.unlink()  # and a trial is removed
    assert "t0006" not in set(load.load_results(sweep)[schema.TRIAL_ID])
    (sweep / CACHE_FILE).write_bytes(b"garbage")  # a damaged cache costs time, not rows
    pd.testing.assert_frame_equal(load.load_results(sweep), old_load(sweep))


def test_a_column_subset_reads_the_full_loads_values_with_or_without_the_cache(tmp_path):
    from suite.store.row_cache import CACHE_FILE, CACHE_MIN_FILES

    sweep = write_sweep(tmp_path, n=CACHE_MIN_FILES + 5)
    wanted = [schema.MODEL, schema.FD_DOMAIN, schema.SAMPLES_PNG]
    subset = load.load_results(sweep, columns=wanted)  # before any cache exists
    assert not (sweep / CACHE_FILE).exists()  # a subset read never writes the cache
    full = load.load_results(sweep)
    assert (sweep / CACHE_FILE).is_file()
    keep = [c for c in full.columns if c in subset.columns]
    assert set(wanted) <= set(keep) and schema.ELBO not in subset.columns
    pd.testing.assert_frame_equal(subset[keep], full[keep])
    pd.testing.assert_frame_equal(load.load_results(sweep, columns=wanted)[keep], full[keep])
    assert load.sample_path(subset.iloc[0]) == load.sample_path(full.iloc[0])


def test_status_takes_cached_rows_without_decoding_and_rereads_a_rewritten_file(
        tmp_path, monkeypatch):
    from suite.store import status as status_module

    sweep = write_sweep(tmp_path, n=120)
    before = {s.trial_id: s for s in sweep_status(sweep)}  # no cache yet: every file read
    load.refresh_row_cache(sweep)
    TrialStore(tmp_path, "gen", "t0005").write_rows([])  # rewritten since it was cached
    decoded = []
    real_read_rows = status_module.read_rows
    monkeypatch.setattr(status_module, "read_rows",
                        lambda path, columns: decoded.append(path) or real_read_rows(path, columns))
    after = {s.trial_id: s for s in sweep_status(sweep)}
    assert [Path(p).parent.name for p in decoded] == ["t0005"]
    assert after["t0005"].state == "missing" and before["t0005"].state == "ok"
    assert {t: s for t, s in after.items() if t != "t0005"} == {
        t: s for t, s in before.items() if t != "t0005"}


def test_result_files_are_found_once_by_their_real_path(tmp_path):
    sweep = write_sweep(tmp_path, n=3)
    (tmp_path / "link").symlink_to(sweep)
    found = load.find_result_files(tmp_path, tmp_path / "link", sweep / "trials" / "t0001" /
                                   RESULT_FILE)
    assert found == [str((sweep / "trials" / f"t000{i}" / RESULT_FILE).resolve())
                     for i in range(3)]
    frame = load.load_results(tmp_path / "link")
    assert set(frame[load.TRIAL_DIR]) == {str((sweep / "trials" / f"t000{i}").resolve())
                                          for i in range(3)}


def test_status_and_show_of_many_trials(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    states = {s.trial_id: s.state for s in sweep_status(sweep)}
    assert len(states) == 60 and states["t0003"] == "failed" and states["t0007"] == "partial"
    assert sum(s == "ok" for s in states.values()) == 58
    assert main(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "ok 58" in out and "failed 1" in out and "partial 1" in out
    assert "t0003" in out and "t0007" in out and "t0010" not in out  # only those not ok
    assert "--all" in out
    assert main(["status", str(sweep), "--all"]) == 0
    assert "t0059" in capsys.readouterr().out
    assert main(["show", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "119 rows of 60 trials" in out and "first and last 20 of 119 rows" in out
    assert "t0000" in out and "t0059" in out and "t0030" not in out
    assert main(["show", str(sweep), "--all"]) == 0
    assert "t0030" in capsys.readouterr().out


# --- collect ---------------------------------------------------------------------------------


def test_collect_writes_a_partitioned_dataset_pandas_reads_back(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    assert main(["collect", str(sweep)]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == sweep / "collected" and (out / MARKER).is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [f"model={m}" for m in
                                                                   sorted(MODELS)]
    back = pd.read_parquet(out)
    expected = load.load_results(sweep)
    key = [schema.TRIAL_ID, schema.EPOCH]
    back = back.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    assert list(back[schema.MODEL].astype(str)) == list(expected[schema.MODEL])
    for col in (schema.TRIAL_ID, schema.EPOCH, schema.STATUS, schema.FD_DOMAIN, load.TRIAL_DIR):
        assert list(back[col]) == list(expected[col]), col
    dataset = ds.dataset(out, partitioning="hive")
    assert dataset.to_table(filter=ds.field(schema.MODEL) == "vae").num_rows == 30
    assert load.load_results(sweep).shape == expected.shape  # the dataset is not result rows


def test_collect_replaces_its_own_dataset_atomically_and_nothing_else(tmp_path):
    sweep = write_sweep(tmp_path, n=8)
    out = tmp_path / "rows"
    first = collect_sweep([sweep], out)
    assert first.rows == 15 and first.trials == 8
    TrialStore(tmp_path, "gen", "t0007").write_rows([])  # the partial trial loses its rows
    second = collect_sweep([sweep], out)
    assert second.rows == 14 and len(pd.read_parquet(out)) == 14
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rows")]  # no leftovers
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["collect", str(sweep), "--out", str(foreign)]) == 2
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_collect_failing_midway_leaves_the_previous_dataset(tmp_path, monkeypatch):
    import suite.cli.collect as collect

    sweep = write_sweep(tmp_path, n=4)
    out = tmp_path / "rows"
    collect_sweep([sweep], out)
    before = sorted(os.listdir(out))

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(collect.os, "fsync", broken)
    with pytest.raises(OSError):
        collect_sweep([sweep], out)
    assert sorted(os.listdir(out)) == before and len(pd.read_parquet(out)) == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
