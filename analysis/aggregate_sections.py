"""The aggregated report's own sections (sweeps above `layout.AGGREGATE_ABOVE` trials):
what aggregation means here, and one row per configuration with t-intervals across
seeds in place of one row per trial, plus the best and worst configurations per model."""

from __future__ import annotations

import pandas as pd

from analysis.configurations import (
    LABEL,
    RANK,
    configuration_table,
    extreme_configurations,
)
from analysis.document import Section, Table, Text
from analysis.intervals import mean_ci_text
from analysis.layout import Place
from analysis.rows import better_is_lower
from analysis.sections import add_table
from suite.store import schema


def aggregation_text(place: Place, keys: list[str], ranked_by: str, quality: bool) -> Text:
    """The summary's statement of how this report aggregates, and why."""
    layout = place.layout
    axes = ", ".join(f"`{k}`" for k in keys) or "none"
    why = "" if quality else " (no quality metric, so by throughput)"
    return Text(
        f"Aggregated report: {layout.n_trials} trials is more than {layout.aggregate_above}, "
        f"so tables group trials by configuration (axes {axes}; every axis but the seed) "
        f"and show the mean and its {layout.confidence:.0%} Student-t interval across seeds "
        "(mean ± t(n-1) · std / sqrt(n); blank with one seed); plots draw one line per model "
        "or upsampling, averaged over the other axes; sample mosaics and GIFs are shown only "
        f"for the {layout.extremes} best and {layout.extremes} worst configurations per model "
        f"by `{ranked_by}`{why}. Images are files under `figures/` beside this report (not "
        "inlined), and long tables are cut to their first "
        f"{layout.max_table_rows} rows with the whole table as CSV under `tables/`; every "
        "trial's row is in `tables/trials.csv`.")


def configurations_section(df: pd.DataFrame, overview: pd.DataFrame, keys: list[str],
                           ranked_by: str, place: Place) -> tuple[Section, pd.DataFrame]:
    """The configurations table (with CSVs of it and of every trial) and the best and
    worst configurations per model by `ranked_by`; returns the section and those."""
    layout = place.layout
    section = Section("Configurations")
    metrics = list(dict.fromkeys([ranked_by, schema.IMAGES_PER_SEC]))
    table = configuration_table(df, overview, keys, metrics, layout.confidence)
    place.tables.mkdir(parents=True, exist_ok=True)
    table.to_csv(place.tables / "configurations.csv", index=False)
    overview.to_csv(place.tables / "trials.csv", index=False)
    section.add(Text(
        f"{len(table)} configurations of {layout.n_trials} trials. Per configuration: its "
        f"trials, how many finished ok, and at the final epoch the mean [{layout.confidence:.0%}"
        " t-interval] across seeds. Full precision: `tables/configurations.csv`; one row per "
        "trial: `tables/trials.csv`."))
    extremes = extreme_configurations(table, ranked_by, layout.extremes)
    if len(extremes):
        direction = "lowest" if better_is_lower(ranked_by) else "highest"
        section.add(Table(_shown(extremes, metrics, layout.confidence, rank=True),
                          f"The {layout.extremes} best and {layout.extremes} worst "
                          f"configurations per model by `{ranked_by}` (best: {direction} "
                          "mean); the samples section shows these"))
    ordered = table.sort_values([ranked_by, LABEL], ascending=[better_is_lower(ranked_by), True],
                                na_position="last", kind="stable")
    add_table(section, _shown(ordered, metrics, layout.confidence),
              f"Every configuration, best `{ranked_by}` first", place, "configurations_shown")
    return section, extremes


def _shown(table: pd.DataFrame, metrics: list[str], confidence: float,
           rank: bool = False) -> pd.DataFrame:
    """The display form: label, (rank), trials, ok, and "mean [low, high]" per metric."""
    out = table[[*([RANK] if rank else []), LABEL, "trials", "ok"]].copy()
    if schema.MODEL in table and rank:
        out.insert(0, schema.MODEL, table[schema.MODEL])
    for metric in metrics:
        out[metric] = [mean_ci_text(m, s, n, confidence) for m, s, n in zip(
            table[metric], table[f"{metric}_std"], table[f"{metric}_n"], strict=True)]
    return out.reset_index(drop=True)

