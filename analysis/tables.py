"""Comparison tables: DataFrame of result rows in, DataFrame out.

Every function selects rows the same way first: `at_epoch` ("final": the row
where epoch == epochs, "last": each trial's latest row, an int: that milestone,
None: every row) and, unless `ok_only=False`, only rows with status "ok"
(diverged and failed rows carry no metrics). Means and standard deviations are
over seeds (sample std, ddof=1: NaN with a single seed). Metric columns that
are all null are skipped, never an error: results written before the metrics
landed have none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from suite.store import schema
from suite.store.states import rows_to_state

STATS = ("mean", "std", "n")

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


# --- row selection -------------------------------------------------------------------


def select_rows(df: pd.DataFrame, at_epoch: int | str | None = "final",
                ok_only: bool = True) -> pd.DataFrame:
    """The rows a table is computed from (see the module docstring)."""
    _require(df, [schema.TRIAL_ID, schema.EPOCH, schema.EPOCHS, schema.STATUS])
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
    if bare:
        label = df[bare].astype("str").agg("/".join, axis=1).astype("str")
    for c in named:
        part = _SHORT_NAMES.get(c, c) + "=" + df[c].astype("str")
        label = (label + " " + part).str.strip()
    if not columns:
        label[:] = "all"
    return label


# --- tables -------------------------------------------------------------------------------


def compare(df: pd.DataFrame, rows: Sequence[str], cols: Sequence[str] = (),
            metric: str = schema.IMAGES_PER_SEC, at_epoch: int | str | None = "final",
            ok_only: bool = True) -> pd.DataFrame:
    """Mean, std and n of `metric` over seeds, rows x cols.

    Index: the `rows` values. Columns: ("mean", "std", "n") without `cols`, else a
    MultiIndex (*cols values, stat). A combination with no data has mean/std NaN, n 0.
    """
    rows, cols = list(rows), list(cols)
    if not rows:
        raise ValueError("compare needs at least one row column")
    _require(df, rows + cols + [metric])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[metric].notna()]
    grouped = data.groupby(rows + cols, dropna=False, sort=True)[metric]
    stats = pd.DataFrame({"mean": grouped.mean().astype("float64"),
                          "std": grouped.std(ddof=1).astype("float64"),
                          "n": grouped.count()})
    if cols and stats.empty:
        empty_index = pd.MultiIndex.from_tuples([], names=rows) if len(rows) > 1 \
            else pd.Index([], name=rows[0])
        stats = pd.DataFrame(index=empty_index,
                             columns=pd.MultiIndex.from_tuples([], names=[*cols, "stat"]))
    elif cols:
        stats = stats.unstack(cols)  # columns: (stat, *cols)
        keys = list(dict.fromkeys(c[1:] for c in stats.columns))
        keys.sort(key=lambda k: tuple(str(v) for v in k))
        order = [(stat, *k) for k in keys for stat in STATS]
        stats = stats.reindex(columns=pd.MultiIndex.from_tuples(order))
        stats.columns = pd.MultiIndex.from_tuples([(*c[1:], c[0]) for c in stats.columns],
                                                  names=[*cols, "stat"])
        n_cols = [c for c in stats.columns if c[-1] == "n"]
        stats[n_cols] = stats[n_cols].fillna(0)
        for c in n_cols:
            stats[c] = stats[c].astype("int64")
    else:
        stats["n"] = stats["n"].astype("int64")
    stats.attrs.update(metric=metric, at_epoch=at_epoch)
    return stats


def format_mean_std(table: pd.DataFrame, mean_digits: int = 4, std_digits: int = 2,
                    missing: str = "") -> pd.DataFrame:
    """A `compare` table as "mean ± std" strings ("mean" alone for one seed)."""
    def cell(mean: Any, std: Any, n: Any) -> str:
        if pd.isna(mean) or (not pd.isna(n) and int(n) == 0):
            return missing
        text = f"{mean:.{mean_digits}g}"
        return text if pd.isna(std) else f"{text} ± {std:.{std_digits}g}"

    if not isinstance(table.columns, pd.MultiIndex):
        name = table.attrs.get("metric", "value")
        out = pd.DataFrame({name: [cell(m, s, n) for m, s, n in
                                   zip(table["mean"], table["std"], table["n"], strict=True)]},
                           index=table.index)
        return out
    keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    out = pd.DataFrame(index=table.index)
    for k in keys:
        label = " / ".join(str(v) for v in k)
        out[label] = [cell(m, s, n) for m, s, n in zip(
            table[(*k, "mean")], table[(*k, "std")], table[(*k, "n")], strict=True)]
    out.columns.name = " / ".join(str(n) for n in table.columns.names[:-1])
    return out


def best_config(df: pd.DataFrame, metric: str, by: str | Sequence[str] = schema.MODEL,
                lower_is_better: bool | None = None, at_epoch: int | str | None = "final",
                ok_only: bool = True) -> pd.DataFrame:
    """Per `by` value, the configuration (mean over seeds) with the best `metric`.

    Columns: by..., the design columns that vary, "mean", "std", "n" (seeds).
    """
    lower = better_is_lower(metric, lower_is_better)
    by = [by] if isinstance(by, str) else list(by)
    _require(df, by + [metric])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[metric].notna()]
    design = [c for c in DESIGN_COLUMNS if c in data and c not in by]
    grouped = data.groupby(by + design, dropna=False, sort=True)[metric]
    agg = pd.DataFrame({"mean": grouped.mean().astype("float64"),
                        "std": grouped.std(ddof=1).astype("float64"),
                        "n": grouped.count().astype("int64")}).reset_index()
    if agg.empty:
        out = pd.DataFrame(columns=[*by, "mean", "std", "n"])
    else:
        pick = agg.groupby(by, dropna=False, sort=True)["mean"]
        out = agg.loc[pick.idxmin() if lower else pick.idxmax()]
        keep = by + varying_columns(data, design) + list(STATS)
        out = out[keep].reset_index(drop=True)
    out.attrs.update(metric=metric, lower_is_better=lower, at_epoch=at_epoch)
    return out


def upsampling_effect(df: pd.DataFrame, metrics: Sequence[str] = (),
                      baseline: str = "transpose", by: Sequence[str] = (),
                      at_epoch: int | str | None = "final", n_boot: int = 2000, seed: int = 0,
                      confidence: float = 0.95, ok_only: bool = True) -> pd.DataFrame:
    """Each upsampling variant against `baseline`, on paired trials.

    A pair is two rows that agree on every design column but upsampling, and on
    seed and epoch (so model, latent_dim, dataset, workers ... all match). For each
    metric: the mean paired difference (variant - baseline). For throughput
    (images_per_sec): the geometric mean of the paired ratios variant / baseline.
    Percentile bootstrap intervals over pairs (`n_boot` resamples, seeded); NaN
    with fewer than two pairs. Metrics without any pair are left out and listed
    in `result.attrs["skipped"]`.

    Columns: by..., variant, baseline, metric, kind ("difference" | "ratio"),
    n_pairs, baseline_mean, variant_mean, estimate, ci_low, ci_high.
    """
    by = list(by)
    metrics = [m for m in metrics if m != schema.IMAGES_PER_SEC]
    values = metrics + [schema.IMAGES_PER_SEC]
    _require(df, by + values + [schema.UPSAMPLING])
    data = select_rows(df, at_epoch, ok_only)
    keys = [c for c in (*DESIGN_COLUMNS, schema.SEED, schema.EPOCH)
            if c in data and c != schema.UPSAMPLING]
    # repeated rows of one cell (e.g. the same config in two sweeps) count once, averaged
    cells = data.groupby(keys + [schema.UPSAMPLING], dropna=False)[values].mean().reset_index()
    base = cells[cells[schema.UPSAMPLING] == baseline]
    out_rows: list[dict[str, Any]] = []
    with_pairs: set[str] = set()
    variants = sorted(v for v in cells[schema.UPSAMPLING].dropna().unique() if v != baseline)
    for variant in variants:
        var = cells[cells[schema.UPSAMPLING] == variant]
        pairs = var.merge(base, on=keys, suffixes=("_v", "_b"))
        groups = pairs.groupby(by, dropna=False, sort=True) if by else [((), pairs)]
        for group, sub in groups:
            group = group if isinstance(group, tuple) else (group,)
            for metric in values:
                kind = "ratio" if metric == schema.IMAGES_PER_SEC else "difference"
                v = sub[f"{metric}_v"].to_numpy(dtype="float64", na_value=np.nan)
                b = sub[f"{metric}_b"].to_numpy(dtype="float64", na_value=np.nan)
                ok = np.isfinite(v) & np.isfinite(b)
                if kind == "ratio":
                    ok &= (v > 0) & (b > 0)
                if not ok.any():
                    continue
                with_pairs.add(metric)
                v, b = v[ok], b[ok]
                x = np.log(v / b) if kind == "ratio" else v - b
                estimate, low, high = bootstrap_mean(x, n_boot, seed, confidence)
                if kind == "ratio":
                    estimate, low, high = np.exp([estimate, low, high])
                out_rows.append({**dict(zip(by, group, strict=True)), "variant": variant,
                                 "baseline": baseline, "metric": metric, "kind": kind,
                                 "n_pairs": int(ok.sum()), "baseline_mean": float(b.mean()),
                                 "variant_mean": float(v.mean()), "estimate": float(estimate),
                                 "ci_low": float(low), "ci_high": float(high)})
    columns = [*by, "variant", "baseline", "metric", "kind", "n_pairs", "baseline_mean",
               "variant_mean", "estimate", "ci_low", "ci_high"]
    out = pd.DataFrame(out_rows, columns=columns)
    out.attrs.update(skipped=[m for m in values if m not in with_pairs], baseline=baseline,
                     confidence=confidence, n_boot=n_boot, at_epoch=at_epoch)
    return out


def bootstrap_mean(x: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of x and its percentile-bootstrap interval (NaN bounds for fewer than 2 values)."""
    x = np.asarray(x, dtype="float64")
    if x.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(low), float(high)


def scaling(df: pd.DataFrame, by: Sequence[str] | None = None,
            at_epoch: int | str | None = "final", ok_only: bool = True) -> pd.DataFrame:
    """Throughput against workers: images/s (mean over seeds), speed-up and efficiency.

    speedup = images/s at w workers / images/s at 1 worker of the same group
    (NaN when the group has no 1-worker run); efficiency = speedup / w.
    Columns: by..., workers, images_per_sec, std, n, images_per_sec_per_worker,
    speedup, efficiency.
    """
    by = [c for c in (SCALING_KEYS if by is None else by) if c in df]
    _require(df, [schema.WORKERS, schema.IMAGES_PER_SEC])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[schema.IMAGES_PER_SEC].notna()]
    grouped = data.groupby(by + [schema.WORKERS], dropna=False, sort=True)[schema.IMAGES_PER_SEC]
    out = pd.DataFrame({schema.IMAGES_PER_SEC: grouped.mean().astype("float64"),
                        "std": grouped.std(ddof=1).astype("float64"),
                        "n": grouped.count().astype("int64")}).reset_index()
    workers = out[schema.WORKERS].astype("float64")
    out[schema.IMAGES_PER_SEC_PER_WORKER] = out[schema.IMAGES_PER_SEC] / workers
    single = out[workers == 1]
    if by:
        one = single[by + [schema.IMAGES_PER_SEC]].rename(
            columns={schema.IMAGES_PER_SEC: "_single"})
        out = out.merge(one, on=by, how="left")
    else:
        out["_single"] = single[schema.IMAGES_PER_SEC].iloc[0] if len(single) else np.nan
    out["speedup"] = out[schema.IMAGES_PER_SEC] / out["_single"]
    out["efficiency"] = out["speedup"] / out[schema.WORKERS].astype("float64")
    return out.drop(columns="_single")


def pareto_front(df: pd.DataFrame, quality: str, throughput: str = schema.IMAGES_PER_SEC,
                 lower_is_better: bool = True, at_epoch: int | str | None = "final",
                 ok_only: bool = True, all_points: bool = False) -> pd.DataFrame:
    """Configurations (mean over seeds) not beaten on both quality and throughput.

    A configuration is on the front when no other one is at least as good on both
    axes and better on one. Returns the front sorted by throughput (fastest first),
    or with `all_points=True` every configuration with an `on_front` column.
    Columns: label, the design columns that vary, quality, throughput, n, on_front.
    """
    _require(df, [quality, throughput])
    data = select_rows(df, at_epoch, ok_only)
    data = data[data[quality].notna() & data[throughput].notna()]
    design = [c for c in DESIGN_COLUMNS if c in data]
    grouped = data.groupby(design, dropna=False, sort=True)
    agg = grouped[[quality, throughput]].mean().astype("float64")
    agg["n"] = grouped[quality].count().astype("int64")
    agg = agg.reset_index()
    shown = varying_columns(agg, design)
    named = list(dict.fromkeys([c for c in (schema.MODEL, schema.UPSAMPLING) if c in agg] + shown))
    agg.insert(0, "label", config_label(agg, named))
    q = agg[quality].to_numpy() * (1.0 if lower_is_better else -1.0)  # smaller is better
    t = agg[throughput].to_numpy()  # larger is better
    no_worse = (q[None, :] <= q[:, None]) & (t[None, :] >= t[:, None])  # [i, j]: j vs i
    better = (q[None, :] < q[:, None]) | (t[None, :] > t[:, None])
    agg["on_front"] = ~(no_worse & better).any(axis=1)
    agg = agg[["label", *shown, quality, throughput, "n", "on_front"]]
    agg = agg.sort_values([throughput, quality], ascending=[False, lower_is_better],
                          kind="stable").reset_index(drop=True)
    agg.attrs.update(quality=quality, throughput=throughput, lower_is_better=lower_is_better)
    return agg if all_points else agg[agg["on_front"]].reset_index(drop=True)


def trial_overview(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its configuration, the last epoch reached and its state.

    The state is the store's own (`suite.store.results.rows_to_state`): diverged, ok
    (every milestone written), failed, or partial.
    """
    if df.empty:
        return pd.DataFrame(columns=[schema.TRIAL_ID, schema.STATUS])
    df = df.sort_values([schema.TRIAL_ID, schema.EPOCH], kind="stable")
    last = df.groupby(schema.TRIAL_ID, sort=False).tail(1).set_index(schema.TRIAL_ID)
    done = df[df[schema.STATUS] == schema.STATUS_OK]
    final = done[done[schema.EPOCH] == done[schema.EPOCHS]].set_index(schema.TRIAL_ID)
    final = final[~final.index.duplicated(keep="last")]

    def status(trial_id: str) -> str:
        rows = df[df[schema.TRIAL_ID] == trial_id]
        return rows_to_state(zip(rows[schema.EPOCH], rows[schema.STATUS], strict=True),
                             _milestones(rows.iloc[-1]))

    columns = [c for c in (schema.SWEEP, *DESIGN_COLUMNS, schema.SEED) if c in last]
    out = last[columns].copy()
    out["epoch_reached"] = last[schema.EPOCH]
    out[schema.STATUS] = [status(t) for t in out.index]
    out[schema.IMAGES_PER_SEC] = final[schema.IMAGES_PER_SEC].reindex(out.index)
    out[schema.ERROR] = last[schema.ERROR].where(last[schema.STATUS] != schema.STATUS_OK)
    order = pd.DataFrame({c: last[c] for c in (schema.SWEEP, schema.TRIAL_INDEX) if c in last})
    if not order.empty:
        out = out.loc[order.sort_values(list(order.columns), kind="stable").index]
    return out.reset_index()


def _milestones(row: pd.Series) -> list[int]:
    """A trial's milestones, from the config every row carries (its final epoch if absent)."""
    try:
        return [int(m) for m in json.loads(row[schema.CONFIG_JSON])["milestones"]]
    except (KeyError, TypeError, ValueError):
        return [int(row[schema.EPOCHS])]


def _require(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing}")
