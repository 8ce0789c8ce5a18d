#!/usr/bin/env bash
# Installs Horovod (TensorFlow + Gloo, no PyTorch/MXNet; + NCCL on GPU hosts) into
# one Python env, reproducibly and cheaply after the first time.
#
# Usage: tools/install-horovod.sh [--variant cpu|gpu] [--dry-run] PYTHON
#   --variant cpu  Gloo only (the default; what `make install` builds on CPU hosts)
#   --variant gpu  Gloo + NCCL for GPU tensors (`make install TF=gpu`): needs nvcc and
#                  NCCL; tools/horovod_build_env.py says where they are looked for
#   --dry-run      print every decision (variant, versions, cache key, which of the
#                  three paths below would run, the build environment) and change nothing
#
# Three paths, fastest first:
#   1. already installed for this key: exit 0 at once;
#   2. a wheel built earlier is cached under
#      ${GENBENCH_CACHE:-$HOME/.cache/genbench}/wheels/KEY/, where KEY is
#      horovod-V-tfT-cpXY[-cudaC-ncclN][-mpi]: install it (--no-deps);
#   3. otherwise build the wheel from the PyPI sdist (minutes), cache it
#      atomically, install it.
# Why build at all: PyPI has no Horovod wheels, and 0.28.1 (the latest) only
# compiles against TF >= 2.16 after source changes (see DESIGN.md).
set -euo pipefail

HOROVOD_VERSION=0.28.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 [--variant cpu|gpu] [--dry-run] PYTHON   (e.g. $0 .venv/bin/python)" >&2
  exit 2
}
VARIANT=cpu
DRY_RUN=0
PY=""
while [ $# -gt 0 ]; do
  case $1 in
    --variant) [ $# -ge 2 ] || usage; VARIANT=$2; shift 2 ;;
    --variant=*) VARIANT=${1#--variant=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -*) usage ;;
    *) [ -z "$PY" ] || usage; PY=$1; shift ;;
  esac
done
[ -n "$PY" ] || usage
if ! [ -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
  echo "horovod: no Python at '$PY'" >&2
  exit 2
fi
# horovodrun is a console script installed next to the interpreter.
BIN_DIR=$(dirname "$PY")
say() { echo "horovod: $*"; }
die() { echo "horovod: error: $*" >&2; exit 1; }

# Every decision comes from the target interpreter, from package metadata and
# the file system (~0.1 s; importing TensorFlow would cost seconds). It prints
# NAME=value lines: VARIANT TF_VERSION PY_TAG WITH_MPI KEY, and for gpu also
# TF_CUDA CUDA_HOME CUDA_VERSION CUDA_SOURCE NCCL_* (or an error with the fix).
DECISIONS=$("$PY" "$HERE/horovod_build_env.py" "$VARIANT" "$HOROVOD_VERSION") || exit 1
eval "$DECISIONS"
CACHE_ROOT="${GENBENCH_CACHE:-$HOME/.cache/genbench}/wheels"
CACHE_DIR="$CACHE_ROOT/$KEY"

# The environment the wheel is built with, one NAME=value a line. $1: the build's
# scratch dir (NCCL wheels ship only libnccl.so.2; CMake links -lnccl, so the build
# gets a libnccl.so symlink there).
build_env() {
  echo HOROVOD_WITH_TENSORFLOW=1
  echo HOROVOD_WITH_GLOO=1
  echo HOROVOD_WITHOUT_PYTORCH=1
  echo HOROVOD_WITHOUT_MXNET=1
  if [ "$WITH_MPI" = 1 ]; then echo HOROVOD_WITH_MPI=1; else echo HOROVOD_WITHOUT_MPI=1; fi
  if [ "$VARIANT" = gpu ]; then
    echo HOROVOD_GPU_OPERATIONS=NCCL
    echo "HOROVOD_CUDA_HOME=$CUDA_HOME"
    echo "HOROVOD_NCCL_INCLUDE=$NCCL_INCLUDE"
    if [ "$(basename "$NCCL_LIBRARY")" = libnccl.so ]; then
      echo "HOROVOD_NCCL_LIB=$(dirname "$NCCL_LIBRARY")"
    else
      echo "HOROVOD_NCCL_LIB=$1/nccl-lib"
    fi
    # One NCCL per process: link the shared library TensorFlow also loads, and
    # find it at run time through mpi_lib.so's RUNPATH.
    echo HOROVOD_NCCL_LINK=SHARED
    echo "LDFLAGS=${LDFLAGS:+$LDFLAGS }-Wl,-rpath,$NCCL_RPATH"
  fi
  # Horovod's CMake build reads this for make -j.
  echo "MAKEFLAGS=-j$(nproc)"
}

# --- 1. fast path ----------------------------------------------------------
# Installed wheel came from our cache dir for this exact key (pip records the
# file URL in direct_url.json), and the runtime deps are there. No TF import.
installed() {
  "$PY" - "$HOROVOD_VERSION" "$KEY" <<'EOF' 2>/dev/null
import importlib.metadata as md
import importlib.util
import sys

version, key = sys.argv[1], sys.argv[2]
dist = md.distribution("horovod")
assert dist.version == version, dist.version
# "/KEY/": a CPU key is a prefix of the GPU keys of the same TF and Python.
assert f"/{key}/horovod-" in (dist.read_text("direct_url.json") or ""), "built for another key"
for dep in ("cloudpickle", "psutil", "yaml", "packaging"):
    assert importlib.util.find_spec(dep), dep
EOF
}

if installed; then
  ACTION=installed
elif compgen -G "$CACHE_DIR/horovod-*.whl" >/dev/null; then
  ACTION=install-cached
else
  ACTION=build
fi

missing_tools() {
  local tool missing=()
  for tool in cmake g++ make; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  echo "${missing[*]}"
}
check_tools() {
  local missing
  missing=$(missing_tools)
  [ -z "$missing" ] || die "building Horovod needs: $missing
  fix: apt-get install -y cmake g++ make   (Debian/Ubuntu, as root)"
}

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: nothing is built or installed"
  while IFS= read -r name; do
    echo "$name=${!name}"
  done < <(echo "$DECISIONS" | sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p')
  echo "CACHE_DIR=$CACHE_DIR"
  echo "ACTION=$ACTION"
  if [ "$ACTION" = build ]; then
    while IFS= read -r line; do echo "ENV $line"; done < <(build_env "<build dir>")
    check_tools
  fi
  exit 0
fi

if [ "$ACTION" = installed ]; then
  say "$KEY already installed"
  exit 0
fi

runtime_deps() {
  say "installing runtime dependencies (cloudpickle psutil pyyaml packaging)"
  "$PY" -m pip install -q cloudpickle psutil pyyaml packaging
}

verify() {
  say "verifying: hvd.init() in one process"
  local size
  size=$("$PY" -c "import horovod.tensorflow as hvd; hvd.init(); print(hvd.size())" 2>/dev/null \
    | tail -n 1) || die "'import horovod.tensorflow; hvd.init()' failed in $PY"
  [ "$size" = 1 ] || die "hvd.size() printed '$size', expected 1"
  if [ "$VARIANT" = gpu ]; then
    say "verifying: horovodrun --check-build lists NCCL"
    local build
    build=$("$BIN_DIR/horovodrun" --check-build 2>&1) || die "horovodrun --check-build failed"
    echo "$build" | grep -q '\[X\] NCCL' \
      || { echo "$build" >&2; die "built with NCCL, but --check-build does not list NCCL"; }
  fi
  # CPU tensors through Gloo, also with the NCCL wheel: hide GPUs so that two ranks
  # on one host do not both place their tensors on GPU 0.
  say "verifying: horovodrun --gloo -np 2 allreduce (CPU tensors)"
  local out
  out=$(CUDA_VISIBLE_DEVICES="" "$BIN_DIR/horovodrun" --gloo -np 2 -H localhost:2 "$PY" -c "
import horovod.tensorflow as hvd, tensorflow as tf
hvd.init()
s = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum)
print('HVDCHECK', hvd.rank(), hvd.size(), float(s))
" 2>&1) || { echo "$out" | tail -n 20 >&2; die "horovodrun --gloo -np 2 failed"; }
  local ok
  ok=$(echo "$out" | grep -c "HVDCHECK [01] 2 3.0" || true)
  [ "$ok" = 2 ] || { echo "$out" | tail -n 20 >&2; die "2-rank allreduce gave a wrong answer"; }
  say "ok: $KEY works (1 process and 2 Gloo ranks)"
}

install_cached() {
  local whl
  whl=$(ls "$CACHE_DIR"/horovod-*.whl)
  say "installing cached wheel $whl"
  runtime_deps
  "$PY" -m pip install -q --no-deps --force-reinstall "$whl"
}

# --- 2. cached wheel -------------------------------------------------------
if [ "$ACTION" = install-cached ]; then
  start=$SECONDS
  install_cached
  verify
  say "installed from cache in $((SECONDS - start)) s"
  exit 0
fi

# --- 3. build from source --------------------------------------------------
say "no cached wheel for $KEY: building from source (several minutes on 2 cores)"
check_tools
"$PY" -c "import setuptools, wheel" 2>/dev/null \
  || "$PY" -m pip install -q setuptools wheel

start=$SECONDS
mkdir -p "$CACHE_ROOT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/genbench-horovod.XXXXXX")
# The staging dir lives in the cache root so the final rename is atomic.
STAGE=$(mktemp -d "$CACHE_ROOT/.build-$KEY.XXXXXX")
trap 'rm -rf "$WORK" "$STAGE"' EXIT

say "downloading horovod==$HOROVOD_VERSION sdist"
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$WORK/sdist" "horovod==$HOROVOD_VERSION"
tar -xzf "$WORK"/sdist/horovod-"$HOROVOD_VERSION".tar.gz -C "$WORK"
SRC="$WORK/horovod-$HOROVOD_VERSION"

# 1) The XLA ops include headers TF >= 2.16 no longer ships; they are experimental
#    and off by default, so compile them out.
# 2) GPU builds only: mpi_ops.cc declares stream_executor::gpu::AsGpuStreamValue and
#    links against TensorFlow's copy, which TF 2.21 no longer exports (an undefined
#    symbol at import). Define it from Stream::platform_specific_handle() instead.
# 3) GPU builds only: no CMake build RPATH, which would name the scratch dir of the
#    libnccl.so symlink (deleted, under /tmp); the RUNPATH is LDFLAGS' alone.
say "patching the sdist for TensorFlow $TF_VERSION"
"$PY" - "$SRC" "$VARIANT" <<'EOF'
import sys
from pathlib import Path

src, variant = Path(sys.argv[1]), sys.argv[2]


def patch(name: str, old: str, new: str) -> None:
    path = src / name
    text = path.read_text()
    if text.count(old) != 1:
        sys.exit(f"expected exactly one {old.splitlines()[0]!r} in {path}, found {text.count(old)}")
    path.write_text(text.replace(old, new))


patch("horovod/tensorflow/xla_mpi_ops.cc", "#if TENSORFLOW_VERSION >= 2006000000\n",
      "#if 0  /* genbench: XLA ops off; their headers moved in TF >= 2.16 */\n")
if variant == "gpu":
    patch("CMakeLists.txt", "project(horovod CXX)\n", "project(horovod CXX)\n"
          "set(CMAKE_SKIP_BUILD_RPATH TRUE)  # genbench: the RUNPATH comes from LDFLAGS\n")
    patch("horovod/tensorflow/mpi_ops.cc", """\
// Forward declaration of AsGpuStreamValue
namespace stream_executor {
namespace gpu {
GpuStreamHandle AsGpuStreamValue(Stream* stream);
} // namespace stream_executor
} // namespace gpu
#if TENSORFLOW_VERSION >= 2011000000
#include "tensorflow/compiler/xla/stream_executor/stream.h"
#else
#include "tensorflow/stream_executor/stream.h"
#endif // TENSORFLOW_VERSION >= 2011000000
""", """\
// genbench: TF 2.21 no longer exports AsGpuStreamValue; the stream's own handle is it.
#include "tensorflow/compiler/xla/stream_executor/stream.h"
namespace stream_executor {
namespace gpu {
inline GpuStreamHandle AsGpuStreamValue(Stream* stream) {
  return static_cast<GpuStreamHandle>(stream->platform_specific_handle().stream);
}
} // namespace gpu
} // namespace stream_executor
""")
EOF
grep -q "^#if 0  /\* genbench: XLA ops off" "$SRC/horovod/tensorflow/xla_mpi_ops.cc" \
  && ! grep -q "^#if TENSORFLOW_VERSION >= 2006000000" "$SRC/horovod/tensorflow/xla_mpi_ops.cc" \
  || die "patch of xla_mpi_ops.cc did not apply"

# Only the decisions above reach the build: stale HOROVOD_* GPU settings from the
# caller's shell would otherwise mix into CMake's own search.
unset HOROVOD_GPU HOROVOD_GPU_OPERATIONS HOROVOD_GPU_ALLREDUCE HOROVOD_GPU_ALLGATHER \
  HOROVOD_GPU_BROADCAST HOROVOD_GPU_ALLTOALL HOROVOD_GPU_REDUCESCATTER HOROVOD_CUDA_HOME \
  HOROVOD_NCCL_HOME HOROVOD_NCCL_INCLUDE HOROVOD_NCCL_LIB HOROVOD_NCCL_LINK
if [ "$VARIANT" = gpu ] && [ "$(basename "$NCCL_LIBRARY")" != libnccl.so ]; then
  mkdir -p "$WORK/nccl-lib"
  ln -s "$NCCL_LIBRARY" "$WORK/nccl-lib/libnccl.so"
fi
while IFS= read -r line; do
  export "$line"
done < <(build_env "$WORK")
if [ "$VARIANT" = gpu ]; then
  say "building wheel (TensorFlow $TF_VERSION, Gloo + NCCL $NCCL_VERSION, CUDA $CUDA_VERSION" \
    "from $CUDA_HOME); log: $WORK/build.log"
elif [ "$WITH_MPI" = 1 ]; then
  say "building wheel (TensorFlow $TF_VERSION, Gloo + MPI); log: $WORK/build.log"
else
  say "building wheel (TensorFlow $TF_VERSION, Gloo; no mpicxx/mpirun so no MPI)"
fi
if ! "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$STAGE" "$SRC" \
    >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  die "building the Horovod wheel failed (last 40 lines above)"
fi
compgen -G "$STAGE/horovod-*.whl" >/dev/null || die "pip wheel produced no wheel in $STAGE"

# Atomic publish: a concurrent build of the same key may have won; keep theirs.
if mv -T "$STAGE" "$CACHE_DIR" 2>/dev/null; then
  say "cached wheel in $CACHE_DIR"
else
  say "another build already cached $KEY; using that one"
fi
build_secs=$((SECONDS - start))
install_cached
verify
say "built and installed in $build_secs s (first build) + $((SECONDS - start - build_secs)) s install/verify"
