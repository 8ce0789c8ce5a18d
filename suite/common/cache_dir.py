"""Where genbench caches what is expensive and shared by runs (reference statistics, the
domain classifier, the Inception graph, peak calibrations)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GENBENCH_CACHE"


def cache_root() -> Path:
    """The cache directory: $GENBENCH_CACHE, else ~/.cache/genbench (read at each call)."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/genbench").expanduser()
