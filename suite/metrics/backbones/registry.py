"""Feature backbones: the BACKBONES registry, a per-process resolver that builds each
backbone once and reuses it across trials, and the preflight that runs before training.

Every backbone describes itself with a BackboneInfo (suite/metrics/backbones/base.py)
in its own module; suite/metrics/backbones/catalog.py lists those modules and this one
registers them. Nothing here knows a backbone by name: it asks the
description whether labels are needed, whether the network is per dataset,
whether the weights option applies and how to check the weights.

Importing this module imports no TensorFlow (networks are built on first use),
so listing and validating names stays fast. Dependencies run one way:
features -> backbone modules -> extractor, backbone, cache.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from suite.common.errors import GenbenchError, SpecError
from suite.common.messages import quote
from suite.common.registry import Registry
from suite.data.catalog import ImageData
from suite.metrics.backbones.base import BackboneInfo
from suite.metrics.backbones.catalog import BACKBONE_MODULES
from suite.metrics.backbones.extractor import (  # re-exported: the extractor types callers use
    DEFAULT_CHUNK,
    FeatureExtractor,
    KerasFeatureExtractor,
    seeded_construction,
)

__all__ = [
    "BACKBONES", "DEFAULT_CHUNK", "MIN_EVAL_SAMPLES", "BackboneInfo", "FeatureExtractor",
    "KerasFeatureExtractor", "check_eval_setup", "clear_backbone_cache", "describe_backbone",
    "get_backbone", "prepare_backbones", "prepare_eval", "register_backbone",
    "resolve_backbones", "seeded_construction",
]

# Fewest real and fake samples an evaluation accepts: k-NN precision/recall (k=3)
# and KID subsets (half the samples) need a handful; FD wants far more to mean much.
MIN_EVAL_SAMPLES = 10

# name -> the backbone's description; tags repeat its validation facts (needs_labels, ...).
BACKBONES: Registry[BackboneInfo] = Registry("backbone")


def register_backbone(info: BackboneInfo) -> None:
    """Make a backbone known to sweeps, preflight and evaluation."""
    BACKBONES.add(info.name, info, **info.tags())


def describe_backbone(name: str) -> BackboneInfo:
    """The description of backbone `name` (UnknownNameError lists the known ones)."""
    info = BACKBONES.get(name)
    if not isinstance(info, BackboneInfo):
        raise TypeError(f"backbone {name!r} was registered as a {type(info).__name__}; "
                        "register a BackboneInfo with register_backbone()")
    return info


for _module in BACKBONE_MODULES:
    register_backbone(importlib.import_module(_module).BACKBONE)

_BUILT: dict[tuple, FeatureExtractor] = {}


def _dataset_identity(data: ImageData) -> tuple:
    return (data.name, data.source, data.train_split, data.x_train.shape)


def labels_problem(info: BackboneInfo, data: ImageData) -> tuple[str, str] | None:
    """(problem, fix) when `info` needs labels that `data` lacks, else None."""
    if not info.needs_labels or data.labelled:
        return None
    label_free = [name for name in BACKBONES if not BACKBONES.tags(name)["needs_labels"]]
    fix = "give the dataset an integer label array (`y` in the npz)"
    if label_free:
        fix = f"use `backbones: [{', '.join(label_free)}]`, or {fix}"
    return info.unlabelled_problem(data.name), fix


def get_backbone(name: str, data: ImageData, weights: str | None = None) -> FeatureExtractor:
    """The backbone `name` for `data`, built once per process and reused afterwards.

    `weights` (the `inception_weights` option) reaches only backbones that take it,
    and is part of their cache key.
    """
    info = describe_backbone(name)
    problem = labels_problem(info, data)
    if problem is not None:
        raise GenbenchError(f"{problem[0]}\n  fix: {problem[1]}")
    option = weights if info.takes_weights else None
    key = (name, _dataset_identity(data) if info.per_dataset else None, option)
    if key not in _BUILT:
        extractor = info.build(data, option)
        if not isinstance(extractor, FeatureExtractor) or extractor.info.name != name:
            raise TypeError(f"backbone {name!r}: its factory must return a FeatureExtractor "
                            f"whose info is its own; got {type(extractor).__name__}")
        _BUILT[key] = extractor
    return _BUILT[key]


def resolve_backbones(names: Iterable[str], data: ImageData,
                      inception_weights: str | None = None) -> dict[str, FeatureExtractor]:
    """The built extractors a trial evaluates with (call once per trial)."""
    return {name: get_backbone(name, data, inception_weights) for name in names}


def clear_backbone_cache() -> None:
    """Forget built backbones (tests; the on-disk caches stay)."""
    _BUILT.clear()


def check_eval_setup(trials: Iterable[Any], data_by_name: Mapping[str, ImageData],
                     inception_weights: str | None = None, source: str = "sweep") -> None:
    """Preflight, before any training: every trial's backbones exist and can be built.

    Raises SpecError (a GenbenchError) for too few eval samples, an unknown
    name in eval.backbones, a backbone that needs labels on a dataset without
    them, or weights a backbone cannot find (or download).
    """
    needed: dict[str, BackboneInfo] = {}
    for trial in trials:
        data = data_by_name.get(trial.dataset)
        n_eval = len(data.x_eval) if data is not None else trial.eval.n_samples
        if min(trial.eval.n_samples, n_eval) < MIN_EVAL_SAMPLES:
            raise SpecError(source, "eval.n_samples",
                            f"n_samples {trial.eval.n_samples} with {n_eval} eval images of "
                            f"{quote(trial.dataset)}: too few for k-NN precision/recall and "
                            "KID subsets", f"use n_samples >= {MIN_EVAL_SAMPLES}, on a dataset "
                            "with at least as many eval images")
        for name in trial.eval.backbones:
            if name not in BACKBONES:
                raise SpecError(source, "eval.backbones", f"unknown backbone {quote(name)}",
                                f"use one or more of: {', '.join(BACKBONES.names())}")
            info = describe_backbone(name)
            problem = labels_problem(info, data) if data is not None else None
            if problem is not None:
                raise SpecError(source, "eval.backbones", *problem)
            needed[name] = info
    for name, info in needed.items():
        if info.check_weights is None:
            continue
        try:
            info.check_weights(inception_weights if info.takes_weights else None)
        except GenbenchError as exc:
            raise SpecError(source, "eval.backbones", f"{name}: {exc}") from None


def prepare_backbones(trials: Iterable[Any], data_by_name: Mapping[str, ImageData],
                      inception_weights: str | None = None,
                      announce: Callable[[str], None] = lambda text: None) -> None:
    """Build (e.g. train, or load from the cache) every per-dataset backbone the trials use.

    Called before the first trial, so that a one-off training is not counted in
    a milestone's eval_time_s, and so that Horovod ranks never wait at a
    barrier while rank 0 trains it.
    """
    needed = {(name, trial.dataset) for trial in trials for name in trial.eval.backbones
              if describe_backbone(name).per_dataset}
    for name, dataset in sorted(needed):
        announce(f"preparing the {name} backbone for {dataset} (built once, then cached)")
        get_backbone(name, data_by_name[dataset], inception_weights)


def prepare_eval(trials: Iterable[Any], data_by_name: Mapping[str, ImageData],
                 inception_weights: str | None, source: str,
                 announce: Callable[[str], None] = lambda text: None) -> None:
    """The CLI's one preflight for evaluation: check every trial's eval setup (SpecError
    naming `source`), then build the per-dataset backbones once, before training."""
    trials = list(trials)
    check_eval_setup(trials, data_by_name, inception_weights, source)
    prepare_backbones(trials, data_by_name, inception_weights, announce)
