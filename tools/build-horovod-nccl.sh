#!/usr/bin/env bash
# Builds the NCCL (GPU) variant of Horovod on a host that has nvcc but maybe no GPU,
# in a venv of its own, and checks what can be checked without a GPU:
#   - the wheel compiles and links NCCL: `horovodrun --check-build` lists NCCL;
#   - the same wheel still runs CPU tensors through Gloo (2 ranks, one host).
# It never touches the project's .venv (a CPU env). The wheel is cached like any
# other (tools/install-horovod.sh), so a second run takes seconds.
#
# Usage: tools/build-horovod-nccl.sh [VENV]    (make horovod-nccl; minutes the first time)
# TensorFlow comes from setup.cfg's `cpu` extra (enough to compile and link the TF
# ops); NCCL from the nvidia-nccl-cu12 wheel that tensorflow[and-cuda] would install;
# nvcc from $CUDA_HOME, PATH or /usr/local/cuda.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-${GENBENCH_CACHE:-$HOME/.cache/genbench}/horovod-nccl-venv}
PY="$VENV/bin/python"
say() { echo "horovod-nccl: $*"; }

start=$SECONDS
if ! [ -x "$PY" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
# The one TensorFlow pin, read from setup.cfg ([options.extras_require] cpu).
TF_REQ=$("$PY" - "$ROOT/setup.cfg" <<'EOF'
import configparser
import sys

cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
print(cfg["options.extras_require"]["cpu"].strip().splitlines()[0])
EOF
)
# TensorFlow 2.21's and-cuda extra asks for nvidia-nccl-cu12>=2.27.7,<3.
NCCL_REQ='nvidia-nccl-cu12>=2.27.7,<3'
say "installing $TF_REQ and $NCCL_REQ into $VENV"
"$PY" -m pip install -q "$TF_REQ" "$NCCL_REQ" setuptools wheel

"$ROOT/tools/install-horovod.sh" --variant gpu "$PY"
say "horovodrun --check-build:"
"$VENV/bin/horovodrun" --check-build
say "done in $((SECONDS - start)) s"
