#!/usr/bin/env bash
# Installs Horovod (TensorFlow + Gloo, no PyTorch/MXNet) into one Python env,
# reproducibly and cheaply after the first time.
#
# Usage: tools/install-horovod.sh PYTHON      (e.g. .venv/bin/python)
#
# Three paths, fastest first:
#   1. already installed for this Horovod/TensorFlow/Python: exit 0 at once;
#   2. a wheel built earlier is cached under
#      ${GENBENCH_CACHE:-$HOME/.cache/genbench}/wheels/horovod-V-tfT-cpXY[-mpi]/:
#      install it (--no-deps);
#   3. otherwise build the wheel from the PyPI sdist (minutes), cache it
#      atomically, install it.
# Why build at all: PyPI has no Horovod wheels, and 0.28.1 (the latest) only
# compiles against TF >= 2.16 after one source change (see DESIGN.md).
set -euo pipefail

HOROVOD_VERSION=0.28.1

if [ $# -ne 1 ]; then
  echo "usage: $0 PYTHON   (e.g. $0 .venv/bin/python)" >&2
  exit 2
fi
PY=$1
if ! [ -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
  echo "horovod: no Python at '$PY'" >&2
  exit 2
fi
# horovodrun is a console script installed next to the interpreter.
BIN_DIR=$(dirname "$PY")
say() { echo "horovod: $*"; }
die() { echo "horovod: error: $*" >&2; exit 1; }

# Versions from package metadata: importing TensorFlow costs seconds, this
# costs ~50 ms.
read -r TF_VERSION PY_TAG <<<"$("$PY" - <<'EOF'
import importlib.metadata as md
import sys

tf = ""
for name in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"):
    try:
        tf = md.version(name)
        break
    except md.PackageNotFoundError:
        pass
print(tf or "none", f"cp{sys.version_info.major}{sys.version_info.minor}")
EOF
)"
[ "$TF_VERSION" != none ] || die "TensorFlow is not installed in $PY; install it first (pip install -e '.[cpu]')"

# MPI is optional: Gloo is what genbench uses; MPI only when a toolchain exists.
if command -v mpicxx >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then
  WITH_MPI=1; MPI_SUFFIX=-mpi
else
  WITH_MPI=0; MPI_SUFFIX=""
fi
KEY="horovod-${HOROVOD_VERSION}-tf${TF_VERSION}-${PY_TAG}${MPI_SUFFIX}"
CACHE_ROOT="${GENBENCH_CACHE:-$HOME/.cache/genbench}/wheels"
CACHE_DIR="$CACHE_ROOT/$KEY"

# --- 1. fast path ----------------------------------------------------------
# Installed wheel came from our cache dir for this exact key (pip records the
# file URL in direct_url.json), and the runtime deps are there. No TF import.
if "$PY" - "$HOROVOD_VERSION" "$KEY" <<'EOF' 2>/dev/null; then
import importlib.metadata as md
import importlib.util
import sys

version, key = sys.argv[1], sys.argv[2]
dist = md.distribution("horovod")
assert dist.version == version, dist.version
assert key in (dist.read_text("direct_url.json") or ""), "built for another key"
for dep in ("cloudpickle", "psutil", "yaml", "packaging"):
    assert importlib.util.find_spec(dep), dep
EOF
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
  say "verifying: horovodrun --gloo -np 2 allreduce"
  local out
  out=$("$BIN_DIR/horovodrun" --gloo -np 2 -H localhost:2 "$PY" -c "
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
if compgen -G "$CACHE_DIR/horovod-*.whl" >/dev/null; then
  start=$SECONDS
  install_cached
  verify
  say "installed from cache in $((SECONDS - start)) s"
  exit 0
fi

# --- 3. build from source --------------------------------------------------
say "no cached wheel for $KEY: building from source (several minutes on 2 cores)"
missing=()
for tool in cmake g++ make; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  die "building Horovod needs: ${missing[*]}
  fix: apt-get install -y cmake g++ make   (Debian/Ubuntu, as root)"
fi
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

# The XLA ops include headers TF >= 2.16 no longer ships; they are
# experimental and off by default, so compile them out.
say "patching horovod/tensorflow/xla_mpi_ops.cc (XLA ops off)"
"$PY" - "$SRC/horovod/tensorflow/xla_mpi_ops.cc" <<'EOF'
import sys

path = sys.argv[1]
old = "#if TENSORFLOW_VERSION >= 2006000000\n"
new = "#if 0  /* genbench: XLA ops off; their headers moved in TF >= 2.16 */\n"
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"expected exactly one line {old.strip()!r} in {path}, found {text.count(old)}")
text = text.replace(old, new)
open(path, "w").write(text)
EOF
grep -q "^#if 0  /\* genbench: XLA ops off" "$SRC/horovod/tensorflow/xla_mpi_ops.cc" \
  && ! grep -q "^#if TENSORFLOW_VERSION >= 2006000000" "$SRC/horovod/tensorflow/xla_mpi_ops.cc" \
  || die "patch of xla_mpi_ops.cc did not apply"

export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1
export HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
if [ "$WITH_MPI" = 1 ]; then
  export HOROVOD_WITH_MPI=1
  say "building wheel (TensorFlow $TF_VERSION, Gloo + MPI); log: $WORK/build.log"
else
  export HOROVOD_WITHOUT_MPI=1
  say "building wheel (TensorFlow $TF_VERSION, Gloo; no mpicxx/mpirun so no MPI)"
fi
# Horovod's CMake build reads this for make -j.
export MAKEFLAGS="-j$(nproc)"
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
