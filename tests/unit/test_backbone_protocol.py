"""Backbones describe themselves; metric code asks them and never names one.

No TensorFlow: the registry, the descriptions, preflight and evaluation with
numpy backbones all run without it (checked with sys.modules in fresh
interpreters). A third and fourth backbone (tests/unit/_toy_backbones.py,
registered in a subprocess) fill their declared columns with no edit to
suite/trial/evaluate.py or features.py.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest

from suite.metrics.backbones.base import (
    LOGITS_DATASET,
    LOGITS_IMAGENET,
    LOGITS_NONE,
    BackboneColumns,
    BackboneInfo,
)
from suite.metrics.backbones.catalog import BACKBONE_MODULES
from suite.metrics.backbones.registry import BACKBONES, describe_backbone
from suite.store import schema

REPO = Path(__file__).resolve().parents[2]
METRICS = REPO / "suite" / "metrics"
HERE = Path(__file__).resolve().parent

DOMAIN_COLUMNS = BackboneColumns(
    fd=schema.FD_DOMAIN, kid=schema.KID_DOMAIN, kid_std=schema.KID_DOMAIN_STD,
    precision=schema.PRECISION_DOMAIN, recall=schema.RECALL_DOMAIN,
    weights_id=schema.DOMAIN_WEIGHTS_ID, class_accuracy=schema.CLASS_ACCURACY,
    intra_class_fd=schema.INTRA_CLASS_FD)
INCEPTION_COLUMNS = BackboneColumns(
    fd=schema.FID_INCEPTION, kid=schema.KID_INCEPTION, kid_std=schema.KID_INCEPTION_STD,
    precision=schema.PRECISION_INCEPTION, recall=schema.RECALL_INCEPTION,
    weights_id=schema.INCEPTION_WEIGHTS_ID, inception_score=schema.INCEPTION_SCORE)
INCEPTION_KERAS_COLUMNS = BackboneColumns(
    fd=schema.FID_INCEPTION_KERAS, kid=schema.KID_INCEPTION_KERAS,
    kid_std=schema.KID_INCEPTION_KERAS_STD, precision=schema.PRECISION_INCEPTION_KERAS,
    recall=schema.RECALL_INCEPTION_KERAS, weights_id=schema.INCEPTION_KERAS_WEIGHTS_ID,
    inception_score=schema.INCEPTION_SCORE_KERAS)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


# ------------------------------------------------------------------ the shipped registry


def test_shipped_backbones_describe_themselves() -> None:
    assert BACKBONES.names() == ["domain", "inception", "inception_keras"]
    domain, inception = describe_backbone("domain"), describe_backbone("inception")
    keras = describe_backbone("inception_keras")
    assert domain.columns == DOMAIN_COLUMNS
    # `inception` is TTUR's graph (the published FID) and says so in a protocol column.
    assert inception.columns == dataclasses.replace(INCEPTION_COLUMNS,
                                                    protocol=schema.FID_PROTOCOL)
    assert keras.columns == INCEPTION_KERAS_COLUMNS
    assert (domain.logits, inception.logits, keras.logits) == (
        LOGITS_DATASET, LOGITS_IMAGENET, LOGITS_IMAGENET)
    assert domain.needs_labels and not inception.needs_labels and not keras.needs_labels
    assert domain.per_dataset and not inception.per_dataset and not keras.per_dataset
    assert not domain.takes_weights and inception.takes_weights and keras.takes_weights
    assert domain.check_weights is None and callable(inception.check_weights)
    assert domain.resize_method == "none (native resolution)"
    assert inception.resize_method == "graph bilinear 299"
    assert keras.resize_method == "tf.image.resize bilinear antialias 299x299"
    assert "pool_3 (2048-d)" in inception.protocol and "1008" in inception.protocol
    assert "2048" in keras.protocol and "128" in domain.protocol
    for name in BACKBONES:
        info = describe_backbone(name)
        assert info.name == name
        assert BACKBONES.tags(name) == info.tags()  # what the spec validator reads
        assert BACKBONES.tags(name)["needs_labels"] is info.needs_labels
        # Declared, built and described in one module, the one the catalog lists.
        assert info.build.__module__ in BACKBONE_MODULES
        assert sys.modules[info.build.__module__].BACKBONE is info


def test_declared_columns_are_schema_columns_and_never_shared() -> None:
    seen: dict[str, str] = {}
    for name in BACKBONES:
        info = describe_backbone(name)
        declared = [*info.column_names(conditional=True), info.columns.weights_id]
        for column in declared:
            assert column in schema.COLUMNS, (name, column)
            assert seen.setdefault(column, name) == name, f"{column}: {seen[column]} and {name}"
    assert describe_backbone("domain").column_names(conditional=False) == [
        schema.FD_DOMAIN, schema.KID_DOMAIN, schema.KID_DOMAIN_STD, schema.PRECISION_DOMAIN,
        schema.RECALL_DOMAIN]


def test_descriptions_that_contradict_themselves_are_refused() -> None:
    def describe(**changes) -> BackboneInfo:
        fields = dict(name="x", build=lambda data, weights: None, columns=DOMAIN_COLUMNS,
                      logits=LOGITS_DATASET, needs_labels=True, per_dataset=True,
                      takes_weights=False, resize_method="none", protocol="p")
        return BackboneInfo(**{**fields, **changes})

    describe()  # consistent
    with pytest.raises(ValueError, match="inception_score"):
        describe(columns=DOMAIN_COLUMNS, logits=LOGITS_IMAGENET, needs_labels=False)
    features_only = BackboneColumns(*dataclasses.astuple(INCEPTION_COLUMNS)[:6])
    describe(columns=features_only, logits=LOGITS_NONE, needs_labels=False)
    with pytest.raises(ValueError, match="need a class_accuracy column"):
        describe(columns=features_only, logits=LOGITS_DATASET)
    with pytest.raises(ValueError, match="fill no inception_score column"):
        describe(columns=INCEPTION_COLUMNS, logits=LOGITS_DATASET)
    with pytest.raises(ValueError, match="fill no class_accuracy column"):
        describe(logits=LOGITS_NONE)
    with pytest.raises(ValueError, match="need labels"):
        describe(needs_labels=False)
    with pytest.raises(ValueError, match="logits"):
        describe(logits="words")
    with pytest.raises(ValueError, match="not in suite/store/schema.py"):
        BackboneColumns(fd="fd_clip", kid=schema.KID_DOMAIN, kid_std=schema.KID_DOMAIN_STD,
                        precision=schema.PRECISION_DOMAIN, recall=schema.RECALL_DOMAIN,
                        weights_id=schema.DOMAIN_WEIGHTS_ID)


# ------------------------------------------------------------------ no names, no cycles


def words_in_code(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every identifier, string (docstrings too) and comment in a module."""
    kinds = {tokenize.NAME, tokenize.STRING, tokenize.COMMENT}
    with open(path, "rb") as f:
        return [(t.start[0], t.string) for t in tokenize.tokenize(f.readline) if t.type in kinds]


def test_metric_code_names_no_backbone() -> None:
    """A backbone's name appears only in its own module and the catalog: the trial's
    evaluate.py, the registry and the rest ask descriptions (a literal like "domain", a
    comment or a docstring naming one, or `import suite.metrics.backbones.domain` would all
    fail here)."""
    own = {sys.modules[describe_backbone(n).build.__module__].__file__ for n in BACKBONES}
    generic = [p for p in sorted([*METRICS.rglob("*.py"), REPO / "suite/trial/evaluate.py"])
               if str(p) not in own and p.name != "catalog.py"]
    assert {"evaluate.py", "registry.py", "extractor.py", "base.py"} <= {
        p.name for p in generic}
    for name in BACKBONES:
        word = re.compile(rf"\b{re.escape(name)}\b")
        for path in generic:
            hits = [(line, text) for line, text in words_in_code(path) if word.search(text)]
            assert not hits, f"{path.name} names backbone {name!r}: {hits[:3]}"


# ------------------------------------------------------------------ a third backbone


THIRD_BACKBONE = r"""
import dataclasses, json, math, sys
import numpy as np

sys.path.insert(0, sys.argv[2])
import _toy_backbones as toy
from suite.store import schema
from suite.data.catalog import load_dataset
from suite.common.errors import GenbenchError, SpecError
from suite.trial.evaluate import evaluate_milestone, sample_column_names
from suite.metrics.backbones.registry import (BACKBONES, prepare_eval, register_backbone,
                                    resolve_backbones)
from suite.sweep.spec import EvalSpec, Trial

register_backbone(toy.CENTROIDS)
register_backbone(toy.PROJECTION)
data = load_dataset("mnist", sys.argv[1])
names = ("toy_centroids", "toy_projection")


def trial(model, backbones=names, dataset="mnist", n=200):
    return Trial(sweep="t", index=0, dataset=dataset, model=model, upsampling="nearest",
                 latent_dim=8, epochs=1, milestones=(1,), seed=3, batch_size=32, lr=1e-3,
                 lr_scaling="none", kernel_size=5, workers=1, max_train_images=None,
                 eval=EvalSpec(n_samples=n, backbones=backbones, batch_size=64))


class RealDigits:
    # A perfect generator: unseen real digits of the requested class (any class unasked).
    def generate(self, noise, labels):
        start = getattr(self, "start", 0)
        self.start = start + len(noise)
        if labels is None:
            return data.x_train[start:start + len(noise)].astype(np.float32) / 255.0
        pools = [data.x_train[data.y_train == c] for c in range(10)]
        rank = np.arange(start, start + len(labels)) // 10
        return np.stack([pools[c][r] for c, r in zip(labels, rank)]).astype(np.float32) / 255.0


class Noise:
    def generate(self, noise, labels):
        rng = np.random.default_rng(len(noise))
        return rng.random((len(noise), 28, 28, 1), dtype=np.float32)


class Broken:
    def generate(self, noise, labels):
        return np.full((len(noise), 28, 28, 1), np.nan, np.float32)


def errors(call):
    try:
        call()
    except GenbenchError as exc:
        return [type(exc).__name__, str(exc)]
    return None


out = {"names": BACKBONES.names()}
out["bad_weights"] = errors(lambda: prepare_eval([trial("cgan")], {"mnist": data}, "oops",
                                                 "s.yaml"))
unlabelled = dataclasses.replace(data, name="u", y_train=None)
out["unlabelled"] = errors(lambda: prepare_eval([trial("dcgan", dataset="u")], {"u": unlabelled},
                                                "seed:1", "s.yaml"))
prepare_eval([trial("cgan")], {"mnist": data}, "seed:1", "s.yaml")
backbones = resolve_backbones(names, data, "seed:1")
again = resolve_backbones(names, data, "seed:1")
other = resolve_backbones(names, data, "seed:2")
out["built_once"] = [again[n] is backbones[n] for n in names]
out["weights_keyed"] = [other[n] is backbones[n] for n in names]
out["columns"] = {str(c): sample_column_names(backbones, c) for c in (True, False)}
out["rows"] = {label: evaluate_milestone(model, data, trial(m), backbones, epoch=1)
               for label, model, m in (("real_cgan", RealDigits(), "cgan"),
                                       ("noise_cgan", Noise(), "cgan"),
                                       ("real_dcgan", RealDigits(), "dcgan"),
                                       ("broken_cgan", Broken(), "cgan"))}
out["tensorflow"] = "tensorflow" in sys.modules or "keras" in sys.modules
print(json.dumps(out, default=float))
"""


@pytest.fixture(scope="module")
def third_backbone(data_dir) -> dict:
    result = run_python(THIRD_BACKBONE, str(data_dir), str(HERE))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_third_backbone_registers_and_builds_without_tensorflow(third_backbone) -> None:
    out = third_backbone
    assert out["names"] == [*BACKBONES.names(), "toy_centroids", "toy_projection"]
    assert out["tensorflow"] is False
    assert out["built_once"] == [True, True]
    assert out["weights_keyed"] == [True, False]  # only the backbone that takes the option


def test_third_backbone_preflight_asks_the_descriptions(third_backbone) -> None:
    kind, message = third_backbone["bad_weights"]
    assert kind == "SpecError"
    assert message.startswith("s.yaml: eval.backbones: toy_projection: ") and "seed:N" in message
    kind, message = third_backbone["unlabelled"]
    assert kind == "SpecError" and "`toy_centroids` backbone (class centroids" in message
    assert "fix: use `backbones: [inception, inception_keras, toy_projection]`" in message


def test_third_backbone_fills_its_declared_columns(third_backbone) -> None:
    rows, columns = third_backbone["rows"], third_backbone["columns"]
    centroids, projection = DOMAIN_COLUMNS, INCEPTION_COLUMNS
    metric_columns = set(schema.COLUMNS) - {schema.N_REAL, schema.N_FAKE, schema.EVAL_SPLIT,
                                           schema.RESIZE_METHOD, schema.DOMAIN_WEIGHTS_ID,
                                           schema.INCEPTION_WEIGHTS_ID}
    for label, row in rows.items():
        conditional = label.endswith("_cgan")
        expected = set(columns[str(conditional)])
        assert {c for c in row if c in metric_columns} == expected, label
        assert row[centroids.weights_id].startswith("centroids-")
        assert row[projection.weights_id] == "seed:1"
        assert row[schema.RESIZE_METHOD] == ("toy_centroids: mean-pool 4x4; "
                                             "toy_projection: mean-pool 4x4, first 49 values")
        assert row[schema.N_REAL] == row[schema.N_FAKE] == 200
        finite = [math.isfinite(row[c]) for c in expected]
        assert all(finite) if label != "broken_cgan" else not any(finite), label
    assert {schema.CLASS_ACCURACY, schema.INTRA_CLASS_FD} <= set(columns["True"])
    assert schema.CLASS_ACCURACY not in columns["False"]
    assert schema.INCEPTION_SCORE in columns["False"]
    real, noise = rows["real_cgan"], rows["noise_cgan"]
    # The toy classifier's logits are the dataset's classes: real digits of the asked
    # class are mostly recognised, noise is not; FDs follow.
    assert real[schema.CLASS_ACCURACY] > 0.6 > 0.3 > noise[schema.CLASS_ACCURACY]
    assert real[schema.FD_DOMAIN] < 0.2 * noise[schema.FD_DOMAIN]
    assert real[schema.INTRA_CLASS_FD] < noise[schema.INTRA_CLASS_FD]
    assert real[schema.FID_INCEPTION] < noise[schema.FID_INCEPTION]
    assert real[schema.RECALL_DOMAIN] > noise[schema.RECALL_DOMAIN]
    assert 1.0 <= real[schema.INCEPTION_SCORE] <= 10.0


# ------------------------------------------------------------------ typed path, atomic writes


def test_evaluate_milestone_takes_built_extractors_only() -> None:
    import inspect

    from suite.trial import evaluate

    assert not hasattr(evaluate, "BackboneSettings")
    params = inspect.signature(evaluate.evaluate_milestone).parameters
    assert list(params) == ["model", "data", "trial", "backbones", "epoch"]
    assert params["epoch"].default is inspect.Parameter.empty
    with pytest.raises(TypeError, match="FeatureExtractor"):
        evaluate.evaluate_milestone(None, None, None, {"x": "random"}, epoch=1)


def test_reference_cache_writes_through_the_project_atomic_writer(tmp_path, monkeypatch) -> None:
    from suite.common import atomic
    from suite.metrics import cache

    assert cache.write_atomic is atomic.write_atomic
    key = cache.ReferenceKey("mnist", "test", "b", "w", 50, "none", "abc")
    ref = cache.features_to_reference(np.random.default_rng(0).standard_normal((50, 4)), None)
    path = tmp_path / "reference" / key.filename()
    cache.save_reference(path, key, ref)
    assert cache.load_reference(path, key) is not None

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    other = tmp_path / "reference" / "other.npz"
    with pytest.raises(atomic.DiskFullError, match="other.npz"):
        cache.save_reference(other, key, ref)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
