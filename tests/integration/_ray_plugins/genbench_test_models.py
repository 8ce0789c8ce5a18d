"""Test-only models for the Ray launcher tests, registered in every Ray worker process.

Monkeypatching MODELS in pytest's process does not reach Ray's worker processes,
so tests/test_ray_launcher.py puts this directory on PYTHONPATH and names
`register` as Ray's `worker_process_setup_hook`. Each build of a model appends a
line to `$GENBENCH_TEST_MARKERS/<model>.attempts`, so a test can count attempts
across processes.

    flaky    fails to build on its first attempt, then is a plain VAE
    broken   fails to build on every attempt
"""

from __future__ import annotations

import os
from pathlib import Path

from suite.models import MODELS

MARKERS_ENV = "GENBENCH_TEST_MARKERS"


def count_attempt(model: str) -> int:
    """Record one more attempt at building `model`; return how many there have been."""
    path = Path(os.environ[MARKERS_ENV]) / f"{model}.attempts"
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    return len(path.read_text().splitlines())


def attempts(model: str) -> int:
    path = Path(os.environ[MARKERS_ENV]) / f"{model}.attempts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def build_flaky(spec, lr, seed):
    if count_attempt("flaky") == 1:
        raise RuntimeError("flaky model: the first attempt fails")
    from suite.models.vae import build_vae

    return build_vae(spec, lr, seed)


def build_broken(spec, lr, seed):
    count_attempt("broken")
    raise RuntimeError("broken model: every attempt fails")


TEST_MODELS = {"flaky": (build_flaky, "vae"), "broken": (build_broken, "gan")}


def register() -> None:
    for name, (factory, family) in TEST_MODELS.items():
        if name not in MODELS:
            MODELS.add(name, factory, family=family, conditional=False)


def unregister() -> None:
    for name in TEST_MODELS:
        MODELS._entries.pop(name, None)
        MODELS._tags.pop(name, None)
