"""How big a report is laid out: every trial inline in one self-contained HTML for a
small sweep, aggregated (grouped tables with confidence intervals, samples of the best
and worst configurations only, images as files beside the HTML) above a size, so a
sweep of thousands of trials still writes a report a browser opens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AGGREGATE_ABOVE = 64  # trials; above this the report aggregates
EXTREMES = 3  # best and worst configurations per model that get sample mosaics and GIFs
CONFIDENCE = 0.95  # the t-interval across seeds in aggregated tables and plots
MAX_TABLE_ROWS = 200  # an aggregated table longer than this shows its first rows + a CSV
TABLES_DIR = "tables"


@dataclass(frozen=True)
class Layout:
    """The report's size decision, made once from the trial count."""

    n_trials: int
    aggregate_above: int = AGGREGATE_ABOVE
    extremes: int = EXTREMES
    confidence: float = CONFIDENCE
    max_table_rows: int = MAX_TABLE_ROWS

    @property
    def aggregate(self) -> bool:
        return self.n_trials > self.aggregate_above

    @property
    def inline_images(self) -> bool:
        """Small reports inline their images (one self-contained file); big ones link."""
        return not self.aggregate


@dataclass(frozen=True)
class Place:
    """Where a report's files go: the report directory, its figures and its CSV tables."""

    out: Path
    layout: Layout

    @property
    def figures(self) -> Path:
        return self.out / "figures"

    @property
    def tables(self) -> Path:
        return self.out / TABLES_DIR
