"""The one definition of a trial's states: the row statuses (ok, diverged, failed, in
suite.store.schema) plus the states the store and the lease derive (missing, partial,
corrupt, busy), and which of them count as finished."""

from __future__ import annotations

from collections.abc import Iterable

from suite.store import schema

# Trial states derived from the store (besides the row statuses ok / diverged / failed).
STATE_MISSING = "missing"  # never started
STATE_PARTIAL = "partial"  # some milestones written, or only a checkpoint: resumable
STATE_CORRUPT = "corrupt"  # the result file cannot be read: `run` sets it aside and restarts
STATE_BUSY = "busy"  # another live process holds the trial's lease


def rows_to_state(rows: Iterable[tuple[int, str]], milestones: Iterable[int],
                  has_checkpoint: bool = False) -> str:
    """The one definition of a trial's state, from its (epoch, status) rows.

    diverged if any row diverged; ok once every milestone has an ok row; failed
    if the last attempt wrote a failed row; partial if something resumable
    exists (rows or a checkpoint); missing otherwise.
    """
    rows = list(rows)
    statuses = {status for _, status in rows}
    if schema.STATUS_DIVERGED in statuses:
        return schema.STATUS_DIVERGED
    done = {epoch for epoch, status in rows if status == schema.STATUS_OK}
    if set(milestones) <= done:
        return schema.STATUS_OK
    if schema.STATUS_FAILED in statuses:
        return schema.STATUS_FAILED
    if rows or has_checkpoint:
        return STATE_PARTIAL
    return STATE_MISSING


def is_finished(state: str) -> bool:
    """Finished trials are skipped on re-runs; divergence is a result, not a fault."""
    return state in (schema.STATUS_OK, schema.STATUS_DIVERGED)
