"""What `make run` needs to know about a sweep before it runs it.

    python tools/sweep_facts.py name SWEEP            print the sweep's name (results go
                                                     to <out>/<name>/)
    python tools/sweep_facts.py needs-horovod SWEEP   exit 0 when a trial has workers > 1
                                                     (Horovod must be installed), else 1

Reads the YAML through suite.sweep.spec (no TensorFlow import, a fraction of a second), so
`make run` builds Horovod only for sweeps that train with it. A sweep that does not
load exits 2 with genbench's one-line message; `genbench run` then reports it again
in its own words, so `make run` has one place that explains bad input.
"""

from __future__ import annotations

import sys

from suite.common.errors import GenbenchError
from suite.sweep.loader import load_sweep

USAGE = "usage: sweep_facts.py name|needs-horovod SWEEP"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("name", "needs-horovod"):
        print(USAGE, file=sys.stderr)
        return 2
    question, sweep_arg = argv
    try:
        sweep = load_sweep(sweep_arg)
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    if question == "name":
        print(sweep.name)
        return 0
    return 0 if any(t.workers > 1 for t in sweep.trials) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
