"""The `checkpoints` policy: validated once, out of trial ids, and its deletion rules on a
real TrialStore; bytes on disk per trial and per sweep (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from suite.common.errors import SpecError
from suite.store import schema
from suite.store.disk import (
    CHECKPOINT_POLICIES,
    DELETE_WHEN_FINISHED,
    KEEP,
    LAST_MILESTONE_ONLY,
    apply_checkpoint_policy,
    directory_bytes,
    format_bytes,
    sweep_disk,
)
from suite.store.states import STATE_PARTIAL
from suite.store.trial_store import TrialStore
from suite.sweep.loader import parse_sweep, with_checkpoints
from suite.sweep.spec import Trial

BASE = {"name": "s", "dataset": "mnist", "grid": {"model": ["dcgan", "vae"], "epochs": [1, 2]},
        "fixed": {"latent_dim": 8}}


def test_policy_is_read_from_the_top_level_or_fixed_and_leaves_ids_alone():
    plain = parse_sweep(BASE, "s.yaml")
    assert {t.checkpoints for t in plain.trials} == {KEEP}
    top = parse_sweep({**BASE, "checkpoints": DELETE_WHEN_FINISHED}, "s.yaml")
    fixed = parse_sweep({**BASE, "fixed": {"latent_dim": 8, "checkpoints": LAST_MILESTONE_ONLY}},
                        "s.yaml")
    assert {t.checkpoints for t in top.trials} == {DELETE_WHEN_FINISHED}
    assert {t.checkpoints for t in fixed.trials} == {LAST_MILESTONE_ONLY}
    ids = [t.trial_id for t in plain.trials]
    assert [t.trial_id for t in top.trials] == ids == [t.trial_id for t in fixed.trials]
    assert "checkpoints" not in plain.trials[0].config()
    flagged = with_checkpoints(plain, DELETE_WHEN_FINISHED)
    assert [t.trial_id for t in flagged.trials] == ids
    assert {t.checkpoints for t in flagged.trials} == {DELETE_WHEN_FINISHED}
    assert with_checkpoints(top, None) is top


def test_trial_json_from_before_the_policy_still_loads():
    trial = parse_sweep(BASE, "s.yaml").trials[0]
    old = json.loads(trial.to_json())
    del old["checkpoints"]
    again = Trial.from_json(json.dumps(old))
    assert again.checkpoints == KEEP and again.trial_id == trial.trial_id


@pytest.mark.parametrize(("raw", "field"), [
    ({**BASE, "checkpoints": "delete"}, "checkpoints"),
    ({**BASE, "fixed": {"checkpoints": 3}}, "fixed.checkpoints"),
    ({**BASE, "checkpoints": "keep", "fixed": {"checkpoints": "keep"}}, "fixed.checkpoints"),
    ({**BASE, "grid": {"model": ["dcgan"], "checkpoints": ["keep", "delete-when-finished"]}},
     "grid.checkpoints"),
])
def test_bad_policies_are_one_spec_error_naming_the_field(raw, field):
    with pytest.raises(SpecError) as caught:
        parse_sweep(raw, "s.yaml")
    message = str(caught.value)
    assert message.startswith(f"s.yaml: {field}:"), message
    if "twice" not in message:
        assert all(p in message for p in CHECKPOINT_POLICIES) or "fixed or at the top" in message


def test_the_flag_is_checked_like_the_file():
    plain = parse_sweep(BASE, "s.yaml")
    with pytest.raises(SpecError, match="--checkpoints: unknown value 'never'; known: keep, "
                                        "last-milestone-only, delete-when-finished"):
        with_checkpoints(plain, "never")


def _store(tmp_path, rows: list[tuple[int, str]]) -> TrialStore:
    store = TrialStore(tmp_path, "s", "abc")
    store.directory.mkdir(parents=True)
    store.write_rows([{schema.TRIAL_ID: "abc", schema.EPOCH: e, schema.STATUS: s,
                       schema.TIMESTAMP: "t"} for e, s in rows])
    with open(store.checkpoint_path, "wb") as f:
        np.savez(f, **{"model/0": np.ones(1000), "trainer/epoch": np.asarray(rows[-1][0])})
    return store


@pytest.mark.parametrize(("policy", "rows", "deleted"), [
    (DELETE_WHEN_FINISHED, [(1, "ok"), (2, "ok")], True),
    (DELETE_WHEN_FINISHED, [(1, "ok"), (2, "diverged")], True),  # divergence is a result
    (DELETE_WHEN_FINISHED, [(1, "ok"), (2, "failed")], False),  # a re-run resumes from it
    (DELETE_WHEN_FINISHED, [(1, "ok")], False),  # epoch 2 is still to come
    (KEEP, [(1, "ok"), (2, "ok")], False),
    (LAST_MILESTONE_ONLY, [(1, "ok"), (2, "ok")], False),
])
def test_deletion_rules_on_a_real_store(tmp_path, policy, rows, deleted):
    store = _store(tmp_path, rows)
    state = store.state((1, 2))
    before = directory_bytes(store.directory)
    assert apply_checkpoint_policy(store, policy, state) is deleted
    assert store.checkpoint_path.exists() is not deleted
    assert store.state((1, 2)) == state  # the rows say the state, not the checkpoint
    if deleted:
        assert directory_bytes(store.directory) < before - 7000  # the 1000 float64s are gone
        assert apply_checkpoint_policy(store, policy, state) is False  # already gone


def test_a_partial_trial_keeps_its_checkpoint_under_every_policy(tmp_path):
    store = _store(tmp_path, [(1, "ok")])
    assert store.state((1, 2)) == STATE_PARTIAL
    for policy in CHECKPOINT_POLICIES:
        assert not apply_checkpoint_policy(store, policy, STATE_PARTIAL)
    assert store.checkpoint_path.exists()


def test_bytes_of_a_trial_and_of_a_sweep(tmp_path):
    store = _store(tmp_path, [(1, "ok"), (2, "ok")])
    (store.samples_dir).mkdir()
    (store.samples_dir / "epoch_0001.png").write_bytes(b"x" * 1234)
    files = [p for p in store.directory.rglob("*") if p.is_file()]
    assert directory_bytes(store.directory) == sum(p.stat().st_size for p in files)
    assert directory_bytes(tmp_path / "missing") == 0
    disk = sweep_disk(tmp_path / "s")
    assert disk.total_bytes == directory_bytes(tmp_path / "s") >= directory_bytes(store.directory)
    assert disk.checkpoints == 1 and disk.checkpoint_bytes == store.checkpoint_path.stat().st_size
    assert [format_bytes(n) for n in (999, 6_600_000, 12_345_678_901)] == [
        "999 B", "6.6 MB", "12.3 GB"]
