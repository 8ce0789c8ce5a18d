"""Row selection and the column vocabulary every table shares: which rows a table is
computed from, the quality metrics and which way each is better, the columns that name
a configuration, and readable configuration labels.

`select_rows(df, at_epoch, ok_only)`: `at_epoch` "final" is the row where epoch ==
epochs, "last" each trial's latest row, an int that milestone, None every row; unless
`ok_only=False`, only status "ok" rows (diverged and failed rows carry no metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from suite.store import schema

# Sample-quality metrics, most useful first (the first available one is "primary").
QUALITY_METRICS: tuple[str, ...] = (
    schema.FD_DOMAIN, schema.FID_INCEPTION, schema.FID_INCEPTION_KERAS, schema.FD_DOMAIN_INF,
    schema.FID_INCEPTION_INF, schema.FID_INCEPTION_KERAS_INF,
    schema.KID_DOMAIN, schema.KID_INCEPTION, schema.KID_INCEPTION_KERAS,
    schema.PRECISION_DOMAIN, schema.RECALL_DOMAIN, schema.PRECISION_INCEPTION,
    schema.RECALL_INCEPTION, schema.PRECISION_INCEPTION_KERAS, schema.RECALL_INCEPTION_KERAS,
    schema.DENSITY_DOMAIN, schema.COVERAGE_DOMAIN, schema.DENSITY_INCEPTION,
    schema.COVERAGE_INCEPTION, schema.DENSITY_INCEPTION_KERAS, schema.COVERAGE_INCEPTION_KERAS,
    schema.INCEPTION_SCORE, schema.INCEPTION_SCORE_KERAS, schema.SPECTRAL_DISTANCE,
    schema.CHECKERBOARD_SCORE, schema.CLASS_ACCURACY, schema.CAS,
    schema.INTRA_CLASS_FD, schema.TEST_ELBO, schema.TEST_RECON_ERROR,
)

# Which way is better, for metrics where the caller does not say.
LOWER_IS_BETTER: dict[str, bool] = {
    schema.FD_DOMAIN: True, schema.FID_INCEPTION: True, schema.KID_DOMAIN: True,
    schema.KID_INCEPTION: True, schema.INTRA_CLASS_FD: True, schema.SPECTRAL_DISTANCE: True,
    schema.CHECKERBOARD_SCORE: True, schema.TEST_RECON_ERROR: True,
    schema.PRECISION_DOMAIN: False, schema.RECALL_DOMAIN: False,
    schema.PRECISION_INCEPTION: False, schema.RECALL_INCEPTION: False,
    schema.INCEPTION_SCORE: False, schema.CLASS_ACCURACY: False,
    schema.TEST_ELBO: False, schema.ELBO: False,  # a bound on log-likelihood: higher is better
    schema.FD_DOMAIN_INF: True, schema.FID_INCEPTION_INF: True,
    schema.DENSITY_DOMAIN: False, schema.COVERAGE_DOMAIN: False,
    schema.DENSITY_INCEPTION: False, schema.COVERAGE_INCEPTION: False, schema.CAS: False,
    schema.FID_INCEPTION_KERAS: True, schema.FID_INCEPTION_KERAS_INF: True,
    schema.KID_INCEPTION_KERAS: True, schema.PRECISION_INCEPTION_KERAS: False,
    schema.RECALL_INCEPTION_KERAS: False, schema.DENSITY_INCEPTION_KERAS: False,
    schema.COVERAGE_INCEPTION_KERAS: False, schema.INCEPTION_SCORE_KERAS: False,
    schema.IMAGES_PER_SEC: False, schema.IMAGES_PER_SEC_PER_WORKER: False,
    schema.MFU: False, schema.ACHIEVED_TFLOPS: False,
    schema.LOSS_G: True, schema.LOSS_D: True, schema.LOSS_RECON: True, schema.LOSS_KL: True,
    schema.STEP_TIME_P50_MS: True, schema.STEP_TIME_P95_MS: True, schema.EPOCH_TIME_S: True,
}

# Columns that describe a configuration, for grouping over seeds. GLOBAL_BATCH_SIZE is
# batch_size x workers, so it adds nothing as a key.
DESIGN_COLUMNS: tuple[str, ...] = tuple(
    c for c in schema.CONFIG_COLUMNS if c not in (schema.SEED, schema.GLOBAL_BATCH_SIZE))

# Throughput depends on these, not on lr or the number of epochs.
SCALING_KEYS: tuple[str, ...] = (
    schema.DATASET, schema.MODEL, schema.UPSAMPLING, schema.LATENT_DIM, schema.KERNEL_SIZE,
    schema.BATCH_SIZE,
)

_SHORT_NAMES = {schema.LATENT_DIM: "z", schema.WORKERS: "w", schema.KERNEL_SIZE: "k",
                schema.BATCH_SIZE: "bs", schema.EPOCHS: "ep", schema.MAX_TRAIN_IMAGES: "n"}


def select_rows(df: pd.DataFrame, at_epoch: int | str | None = "final",
                ok_only: bool = True) -> pd.DataFrame:
    """The rows a table is computed from (see the module docstring)."""
    require_columns(df, [schema.TRIAL_ID, schema.EPOCH, schema.EPOCHS, schema.STATUS])
    if ok_only:
        df = df[df[schema.STATUS] == schema.STATUS_OK]
    if at_epoch is None or at_epoch == "all":
        return df
    if at_epoch == "final":
        return df[df[schema.EPOCH] == df[schema.EPOCHS]]
    if at_epoch == "last":
        last = df.groupby(schema.TRIAL_ID)[schema.EPOCH].transform("max")
        return df[df[schema.EPOCH] == last]
    if isinstance(at_epoch, int | np.integer) and not isinstance(at_epoch, bool):
        return df[df[schema.EPOCH] == at_epoch]
    raise ValueError(f"at_epoch must be 'final', 'last', None or an int, not {at_epoch!r}")


def available_metrics(df: pd.DataFrame, metrics: Sequence[str] = QUALITY_METRICS,
                      at_epoch: int | str | None = None, ok_only: bool = True) -> list[str]:
    """The metrics (in the given order) that have at least one value in the selected rows."""
    data = select_rows(df, at_epoch, ok_only) if len(df) else df
    return [m for m in metrics if m in data and data[m].notna().any()]


def varying_columns(df: pd.DataFrame, columns: Sequence[str] = DESIGN_COLUMNS) -> list[str]:
    """The columns (in the given order) that take more than one value, nulls included."""
    return [c for c in columns if c in df and df[c].nunique(dropna=False) > 1]


def better_is_lower(metric: str, override: bool | None = None) -> bool:
    if override is not None:
        return bool(override)
    if metric not in LOWER_IS_BETTER:
        raise ValueError(f"no known direction for {metric!r}: pass lower_is_better=True/False")
    return LOWER_IS_BETTER[metric]


def config_label(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Readable configuration names from the given columns: "dcgan/nearest z=8 w=2".

    Dataset, model and upsampling appear bare (joined by "/"), others as name=value.
    """
    bare = [c for c in columns if c in (schema.DATASET, schema.MODEL, schema.UPSAMPLING)]
    named = [c for c in columns if c not in bare]
    label = pd.Series("", index=df.index, dtype="str")
    if df.empty:  # agg over no rows would return a frame, not a series
        return label
    if bare:  # column-wise string joins: a row-wise join is slow at thousands of rows
        label = _text(df[bare[0]])
        for c in bare[1:]:
            label = label + "/" + _text(df[c])
    for c in named:
        label = (label + " " + _SHORT_NAMES.get(c, c) + "=" + _text(df[c])).str.strip()
    if not columns:
        label[:] = "all"
    return label


def _text(column: pd.Series) -> pd.Series:
    """A column as text, a missing value as "nan"."""
    return column.astype("str").fillna("nan")


def require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """KeyError naming the columns a table needs that the frame lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
