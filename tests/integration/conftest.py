"""Integration tier: trains models, starts Horovod ranks, Ray, Slurm or Chromium.

Every test in this folder is marked `integration`; `make test-fast` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
