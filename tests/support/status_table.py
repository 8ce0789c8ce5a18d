"""The rows of `genbench status`'s table, read by column: a job id matched as a substring
also matched other text (job 4 in "disk: 849.3 kB" on a fresh cluster's small ids)."""

from __future__ import annotations

CELL = "│"


def status_rows(stdout: str) -> list[dict[str, str]]:
    """Each body row of the status table as {column header: cell text}."""
    lines = [line for line in stdout.splitlines() if line.startswith(CELL)]
    if not lines:
        return []
    header_line = next((line for line in stdout.splitlines() if line.startswith("┃")), "")
    headers = [h.strip() for h in header_line.strip("┃").split("┃")]
    return [dict(zip(headers, (c.strip() for c in line.strip(CELL).split(CELL)), strict=True))
            for line in lines]


def rows_of_jobs(stdout: str, jobs: list[str]) -> list[dict[str, str]]:
    """The status rows whose `job` cell is one of `jobs`."""
    return [row for row in status_rows(stdout) if row.get("job") in set(jobs)]
