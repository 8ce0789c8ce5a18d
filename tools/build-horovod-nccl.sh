#!/usr/bin/env bash
# Builds the NCCL (GPU) variant of Horovod on a host that has nvcc but maybe no GPU,
# in a venv of its own, and checks what can be checked without a GPU:
#   - the wheel compiles and links NCCL: `horovodrun --check-build` lists NCCL;
#   - the same wheel still runs CPU tensors through Gloo (2 ranks, one host).
# It never touches the project's .venv (a CPU env). The wheel is cached like any
# other (tools/install-horovod.sh), so a second run takes seconds.
#
# Usage: tools/build-horovod-nccl.sh [VENV]    (make horovod-nccl; minutes the first time)
# TensorFlow: setup.cfg's `gpu` pin without the [and-cuda] extra (the CUDA build of
# TensorFlow, whose GPU kernels Horovod links, without gigabytes of CUDA libraries);
# NCCL: the nvidia-nccl-cu12 wheel that [and-cuda] would install; nvcc: the toolkit
# in $HOROVOD_CUDA_HOME, else $CUDA_HOME, else /usr/local/cuda. Any CUDA version
# does for this check (nothing runs on a GPU here), so it is chosen explicitly;
# `make install TF=gpu` on a GPU host insists on TensorFlow's CUDA major instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-${GENBENCH_CACHE:-$HOME/.cache/genbench}/horovod-nccl-venv}
PY="$VENV/bin/python"
export HOROVOD_CUDA_HOME=${HOROVOD_CUDA_HOME:-${CUDA_HOME:-/usr/local/cuda}}
say() { echo "horovod-nccl: $*"; }

start=$SECONDS
if ! [ -x "$PY" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
# The one TensorFlow pin, read from setup.cfg ([options.extras_require] gpu).
TF_REQ=$("$PY" - "$ROOT/setup.cfg" <<'PYEOF'
import configparser
import re
import sys

cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
print(re.sub(r"\[.*?\]", "", cfg["options.extras_require"]["gpu"].strip().splitlines()[0]))
PYEOF
)
# TensorFlow 2.21's and-cuda extra asks for nvidia-nccl-cu12>=2.27.7,<3.
NCCL_REQ='nvidia-nccl-cu12>=2.27.7,<3'
say "installing $TF_REQ and $NCCL_REQ into $VENV"
# A CPU TensorFlow shares its files with the CUDA one: remove it, then rewrite them.
if "$PY" -m pip show tensorflow-cpu >/dev/null 2>&1; then
  "$PY" -m pip uninstall -q -y tensorflow-cpu
  "$PY" -m pip install -q --force-reinstall --no-deps "$TF_REQ"
fi
"$PY" -m pip install -q "$TF_REQ" "$NCCL_REQ" setuptools wheel

say "nvcc from HOROVOD_CUDA_HOME=$HOROVOD_CUDA_HOME"
"$ROOT/tools/install-horovod.sh" --variant gpu "$PY"
say "horovodrun --check-build:"
"$VENV/bin/horovodrun" --check-build 2>/dev/null  # stderr: TensorFlow's start-up logs
say "done in $((SECONDS - start)) s"
