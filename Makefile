# genbench: the two commands are `make run` and `make test`.
# Installing is incremental: the venv and the package install are redone only
# when setup.cfg / pyproject.toml change; Horovod is built once and cached.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# cpu (tensorflow-cpu) or gpu (tensorflow[and-cuda]); see setup.cfg
TF     ?= cpu
EXTRAS ?= $(TF),dev,ray,slurm
comma  := ,
STAMP  := $(VENV)/.genbench-installed-$(subst $(comma),-,$(EXTRAS))
SWEEP  ?= smoke
OUT    ?= results
PYTEST_ARGS ?=

.PHONY: install horovod-nccl test-deps run test test-fast bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --editable '.[$(EXTRAS)]'
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

run: install
	$(VENV)/bin/genbench run $(SWEEP) --out $(OUT)

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

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
