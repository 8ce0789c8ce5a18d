"""Where `genbench plan` gets its figures: step times from earlier result rows of this
machine, and the one-time costs a sweep will pay (pandas and file names only, no
TensorFlow, so plan answers on a login node)."""

from __future__ import annotations

import math
import socket
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from suite.cli.cost import STEP_FIELDS, OneTimeCost, StepTime, step_key
from suite.common.cache_dir import cache_root
from suite.machine.description import cpu_device
from suite.metrics.backbones.domain import DOMAIN_DIR
from suite.metrics.cache import REFERENCE_DIR, safe_name
from suite.store import schema

# Training the domain classifier once per dataset, cold cache (docs/sweeps.md): MNIST's
# 250 steps about a minute on 2 cores, CIFAR-10's 800 steps about two.
CLASSIFIER_S: dict[str, float] = {"cifar10": 126.0}
DEFAULT_CLASSIFIER_S = 60.0
REFERENCE_S = 5.0  # embedding the real eval images once per dataset, backbone and n
_ROW_COLUMNS = (*STEP_FIELDS, schema.TRAIN_TIME_S, schema.COMPILE_TIME_S, schema.STEPS,
                schema.WARMUP_STEPS, schema.HOSTNAME, schema.DEVICE, schema.STATUS,
                schema.EPOCH)


def rows_step_times(root: Path) -> dict[tuple, StepTime]:
    """Median seconds per step and warm-up per configuration, from the final rows of
    every finished trial under `root` that ran on this machine (its host name, or a CPU
    of the same model and core count). Empty when `root` holds no rows."""
    if not root.is_dir():
        return {}
    from analysis.load import load_results  # pandas: only when there are rows to read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged file elsewhere in the root: not ours
        try:
            df = load_results(root, columns=[c for c in _ROW_COLUMNS
                                             if c in schema.COLUMN_TYPES])
        except (FileNotFoundError, ValueError):
            return {}
    if df.empty or schema.TRAIN_TIME_S not in df:
        return {}
    here = (df[schema.HOSTNAME] == socket.gethostname()) | (df[schema.DEVICE] == cpu_device())
    ok = df[here & (df[schema.STATUS] == schema.STATUS_OK)]
    final = ok.sort_values(schema.EPOCH).groupby(schema.TRIAL_ID).tail(1)
    samples: dict[tuple, list[tuple[float, float]]] = {}
    for row in final.itertuples(index=False):
        sample = _row_step(row)
        if sample is not None:
            samples.setdefault(step_key(row), []).append(sample)
    return {key: StepTime(_median([s for s, _ in values]), _median([c for _, c in values]),
                          "rows") for key, values in samples.items()}


def _row_step(row: Any) -> tuple[float, float] | None:
    """(seconds per timed step, warm-up seconds) of one row, None when it cannot say."""
    try:
        timed = int(row.steps) - int(row.warmup_steps)
        seconds = float(row.train_time_s) - float(row.compile_time_s)
    except (TypeError, ValueError):  # missing values (NA) in an older row
        return None
    if timed < 1 or not math.isfinite(seconds) or seconds <= 0:
        return None
    if any(_missing(getattr(row, name)) for name in STEP_FIELDS):
        return None
    return seconds / timed, float(row.compile_time_s)


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)
    except (TypeError, ValueError):  # pandas.NA
        return True


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def one_time_costs(trials: Iterable[Any], cache: Path | None = None) -> list[OneTimeCost]:
    """The domain classifier per dataset whose cache holds none, and the reference
    statistics per (dataset, backbone, n) not cached yet: judged by file names, so a
    cache of other data of the same name counts as warm."""
    cache = cache or cache_root()
    costs: list[OneTimeCost] = []
    seen: set[tuple] = set()
    for t in trials:
        for backbone in t.eval.backbones:
            key = (t.dataset, backbone, t.eval.n_samples)
            if key in seen:
                continue
            seen.add(key)
            name = safe_name(t.dataset)
            if backbone == "domain" and ("domain", t.dataset) not in seen:
                seen.add(("domain", t.dataset))
                if not any((cache / DOMAIN_DIR).glob(f"{name}-*.weights.h5")):
                    costs.append(OneTimeCost(f"domain classifier for {t.dataset}",
                                             CLASSIFIER_S.get(t.dataset, DEFAULT_CLASSIFIER_S)))
            pattern = f"{name}_*{safe_name(backbone)}*_n{t.eval.n_samples}_*"
            if not any((cache / REFERENCE_DIR).glob(pattern)):
                costs.append(OneTimeCost(f"reference statistics {t.dataset} {backbone} "
                                         f"n={t.eval.n_samples}", REFERENCE_S))
    return costs
