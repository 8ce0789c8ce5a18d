# genbench: the two commands are `make run` and `make test`.
# Installing is incremental: the venv and the package install are redone only when
# the lock (requirements/$(TF).txt), setup.cfg or pyproject.toml change; Horovod is
# built once and cached.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# cpu (tensorflow-cpu) or gpu (tensorflow[and-cuda]); see setup.cfg
TF     ?= cpu
# What installs is the lock of exact versions for $(TF), never a fresh resolve of
# setup.cfg's ranges, so a new release cannot change an install without a commit.
LOCK   := requirements/$(TF).txt
# The extras each lock holds besides its TF variant (`make lock` resolves them).
EXTRAS ?= dev,ray,slurm
comma  := ,
STAMP  := $(VENV)/.genbench-installed-$(TF)
# `make run`'s sweep (suite/sweep/configs/demo.yaml: about 3.5 minutes of training on 2 cores); any built-in
# name or YAML path works, e.g. `make run SWEEP=smoke`.
SWEEP  ?= demo
OUT    ?= results
# `make run` writes the sweep's report to $(REPORT)/<sweep name>/report.html
REPORT ?= report
PYTEST_ARGS ?=

.PHONY: install horovod-nccl test-deps run test test-fast bench lint lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# uv installs and locks: a cold-cache install of the lock took 61 s with uv against
# 108 s with pip on a 2-core AVX2 machine, the same first import after either
# (--compile-bytecode). It sits in a directory of its own, never in .venv's
# site-packages (which holds the lock and nothing else), and reads the system's
# certificate store, as pip does here. pip stays in .venv, upgraded: Horovod builds
# with it (tools/install-horovod.sh).
UV_VERSION ?= 0.13.9
UV_TOOLS   := $(VENV)/uv-tools
UV         := UV_SYSTEM_CERTS=1 $(UV_TOOLS)/bin/uv
UV_STAMP   := $(UV_TOOLS)/.uv-$(UV_VERSION)

$(UV_STAMP): | $(PY)
	$(PY) -m pip install --quiet --target $(UV_TOOLS) uv==$(UV_VERSION)
	touch $@

# The lock first, then the package itself without deps: nothing is resolved.
$(STAMP): $(LOCK) setup.cfg pyproject.toml | $(PY) $(UV_STAMP)
	$(UV) pip install --quiet --python $(PY) --upgrade pip
	$(UV) pip install --quiet --python $(PY) --compile-bytecode --requirement $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps --editable .
	touch $@

# TF=cpu builds Horovod with Gloo; TF=gpu adds NCCL for GPU tensors (needs nvcc and
# NCCL: see README, "GPU hosts"). Either wheel is built once and cached.
install: $(STAMP)
	@tools/install-horovod.sh --variant $(TF) $(PY)

# Builds the NCCL variant in a venv of its own (never .venv) on a host with nvcc, GPU
# or not, and checks `horovodrun --check-build` lists NCCL and 2 Gloo ranks still work.
# Minutes the first time, so not part of `make test`.
HOROVOD_NCCL_VENV ?= $(or $(GENBENCH_CACHE),$(HOME)/.cache/genbench)/horovod-nccl-venv
horovod-nccl:
	@tools/build-horovod-nccl.sh $(HOROVOD_NCCL_VENV)

# A first run waits only for what its sweep uses: the package, plus Horovod (minutes to
# build the first time, then cached) only when a trial has workers > 1. It writes the
# report even when some trials failed, prints the report's path, and keeps
# `genbench run`'s exit status.
run: $(STAMP)
	@if $(PY) tools/sweep_facts.py needs-horovod $(SWEEP) 2>/dev/null; then \
	  echo "$(SWEEP) has multi-worker trials: installing Horovod"; \
	  tools/install-horovod.sh --variant $(TF) $(PY); fi
	@status=0; $(VENV)/bin/genbench run $(SWEEP) --out $(OUT) || status=$$?; \
	name=$$($(PY) tools/sweep_facts.py name $(SWEEP) 2>/dev/null) || exit $$status; \
	if [ -d "$(OUT)/$$name" ]; then \
	  $(VENV)/bin/genbench report "$(OUT)/$$name" --out "$(REPORT)/$$name" >/dev/null || exit 1; \
	  echo; echo "report: $$(realpath "$(REPORT)/$$name/report.html")"; fi; \
	exit $$status

# System packages only the tests use (a one-node Slurm, headless Chromium): installed
# here, by the test target's own install step, never by `make run` or inside a test.
TEST_DEB_PKGS ?= munge slurmctld slurmd slurm-client chromium

test-deps:
	@tools/system-deps.sh $(TEST_DEB_PKGS)

test: install test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast tier: no model training, no cluster (tests/unit), in well under 2 minutes.
test-fast: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install
	$(VENV)/bin/ruff check suite analysis tests benchmarks

# Regenerates requirements/cpu.txt and gpu.txt from setup.cfg (+ the holds in
# requirements/constraints.txt) for Python 3.11 on Linux x86_64, with uv (above).
# Upgrade on purpose: run `make lock`,
# then `make test`, and commit the lock. `make lock LOCK_FLAGS=` keeps the current pins
# where they still fit (e.g. after adding one dependency) instead of taking the newest.
# setuptools is left out as pip-tools does: it comes with the venv, and Horovod builds
# against it (--no-build-isolation), so a lock must not swap it under that build.
LOCK_FLAGS  ?= --upgrade

lock: $(UV_STAMP)
	@for v in cpu gpu; do \
	  echo "locking requirements/$$v.txt"; \
	  $(UV) pip compile setup.cfg --quiet $(LOCK_FLAGS) \
	    --extra $$v $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
	    --constraint requirements/constraints.txt --no-emit-package setuptools \
	    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	    --custom-compile-command 'make lock' --output-file requirements/$$v.txt \
	    || exit 1; \
	done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
