"""User-facing errors: one clear message naming the file, the field and a fix.

The CLI prints these without a traceback and exits with code 2, before any
compute starts and without touching what is already written.
"""

from __future__ import annotations


class GenbenchError(Exception):
    """An error the user can fix; `str()` is the whole message."""


class SpecError(GenbenchError):
    """Bad sweep file or command-line input."""

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source, self.field, self.problem, self.fix = source, field, problem, fix
        message = f"{source}: {field}: {problem}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)


class DataNotFoundError(GenbenchError):
    """A dataset that is neither in a data dir nor downloadable."""


class DataError(DataNotFoundError):
    """A dataset that is there but breaks a rule: shape, length, dtype, label range, size.

    A DataNotFoundError too, so code that catches an unusable dataset catches both.
    """
