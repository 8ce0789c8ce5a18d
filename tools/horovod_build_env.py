"""Decide how tools/install-horovod.sh builds Horovod for one Python env.

Run BY the target interpreter (so sys.path and importlib.metadata see that env's
site-packages), with the standard library only: it must not import TensorFlow.
Prints shell assignments (NAME=value, quoted) for the script to eval. A problem
the user can fix is reported as one "horovod: error: ..." line plus a "fix:"
line on stderr, exit status 1, no traceback.

Variants:
  cpu  Gloo only (what CPU hosts build; the cache key is unchanged from before).
  gpu  Gloo + NCCL for GPU tensors (HOROVOD_GPU_OPERATIONS=NCCL). Needs nvcc
       (Horovod compiles a few CUDA kernels) and NCCL headers + shared library.
       The cache key also names the CUDA and NCCL versions.

Where things are looked for, first match wins (the same order is printed in errors):
  nvcc: $HOROVOD_CUDA_HOME (explicit: used even if its CUDA major differs from
        TensorFlow's), $CUDA_HOME, $CUDA_PATH, nvcc on PATH, NVIDIA wheels in
        site-packages (nvidia/cuXX/bin/nvcc, nvidia/cuda_nvcc/bin/nvcc), then
        $GENBENCH_CUDA_ROOTS (default /usr/local/cuda:/usr/local/cuda-*:/opt/cuda).
        When TensorFlow is a CUDA build, the first toolkit of its CUDA major wins.
  NCCL: $HOROVOD_NCCL_HOME or $HOROVOD_NCCL_INCLUDE + $HOROVOD_NCCL_LIB (explicit),
        the nvidia-nccl-cuXX wheel that tensorflow[and-cuda] installs, the chosen CUDA
        toolkit, then $GENBENCH_NCCL_ROOTS (default /usr:/usr/local:/opt/nccl).
"""

from __future__ import annotations

import glob
import importlib.metadata as md
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TF_DISTS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly")
DEFAULT_CUDA_ROOTS = "/usr/local/cuda:/usr/local/cuda-*:/opt/cuda"
DEFAULT_NCCL_ROOTS = "/usr:/usr/local:/opt/nccl"
CPU_FIX = "or build the Gloo-only variant: make install TF=cpu"


class BuildEnvError(Exception):
    """A problem the user can fix: one line saying what, one saying how."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass(frozen=True)
class Cuda:
    home: Path
    version: str  # major.minor, from `nvcc --version`
    source: str


@dataclass(frozen=True)
class Nccl:
    include: Path
    library: Path  # the shared library file itself (libnccl.so or libnccl.so.2)
    version: str  # major.minor.patch, from nccl.h
    source: str
    rpath: str  # where mpi_lib finds it at run time ($ORIGIN-relative for wheels)


def short(value: object, limit: int = 60) -> str:
    """Values quoted in messages stay one line long."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_tensorflow() -> md.Distribution | None:
    for name in TF_DISTS:
        try:
            return md.distribution(name)
        except md.PackageNotFoundError:
            continue
    return None


def read_tf_cuda_major(tf: md.Distribution) -> int | None:
    """CUDA major TensorFlow was built with (None for a CPU build), without importing it."""
    info = Path(str(tf.locate_file("tensorflow/python/platform/build_info.py")))
    if not info.is_file():
        return None
    found = re.search(r"'cuda_version',\s*'(\d+)", info.read_text(errors="replace"))
    return int(found.group(1)) if found else None


def nvidia_dists(prefix: str) -> list[md.Distribution]:
    """Installed NVIDIA wheels named prefix-cuXX (e.g. nvidia-nccl-cu12), deduplicated."""
    seen: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if re.fullmatch(re.escape(prefix) + r"(-cu\d+)?", name):
            seen.setdefault(name, dist)
    return [seen[name] for name in sorted(seen)]


def run_nvcc(nvcc: Path, *args: str) -> str:
    try:
        done = subprocess.run([str(nvcc), *args], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout + done.stderr  # --dryrun writes to stderr


def probe_nvcc(nvcc: Path, source: str) -> Cuda | None:
    """The toolkit an nvcc belongs to, or None if it does not run or has no headers.

    nvcc may be a wrapper script (/usr/local/bin/nvcc -> exec .../cuda-13.0/bin/nvcc):
    its own --dryrun says where it really lives (_HERE_), else follow symlinks.
    """
    if not os.access(nvcc, os.X_OK):
        return None
    found = re.search(r"release (\d+)\.(\d+)", run_nvcc(nvcc, "--version"))
    if not found:
        return None
    here = re.search(r"^#\$ _HERE_=(.+)$", run_nvcc(
        nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull), re.MULTILINE)
    bin_dir = Path(here.group(1).strip()) if here else Path(os.path.realpath(nvcc)).parent
    home = bin_dir.resolve().parent
    headers = [home / "include", *home.glob("targets/*/include")]
    if not any((inc / "cuda_runtime.h").is_file() for inc in headers):
        return None
    return Cuda(home, f"{found.group(1)}.{found.group(2)}", source)


def expand_roots(variable: str, default: str) -> list[Path]:
    roots: list[Path] = []
    for pattern in os.environ.get(variable, default).split(":"):
        if pattern:
            roots += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
    return roots


def nvcc_candidates() -> list[tuple[Path, str]]:
    """(nvcc, where it came from), in search order."""
    found = [(Path(os.environ[var]) / "bin" / "nvcc", f"${var}")
             for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)]
    on_path = shutil.which("nvcc")
    if on_path:
        found.append((Path(on_path), "nvcc on PATH"))
    for entry in sys.path:
        for nvcc in sorted(glob.glob(os.path.join(entry, "nvidia", "*", "bin", "nvcc"))):
            found.append((Path(nvcc), "NVIDIA wheel in site-packages"))
    roots = expand_roots("GENBENCH_CUDA_ROOTS", DEFAULT_CUDA_ROOTS)
    return found + [(root / "bin" / "nvcc", "$GENBENCH_CUDA_ROOTS") for root in roots]


def choose_cuda(tf_cuda_major: int) -> Cuda:
    explicit = os.environ.get("HOROVOD_CUDA_HOME")
    if explicit:
        # Horovod's CMake runs exactly $HOROVOD_CUDA_HOME/bin/nvcc.
        cuda = probe_nvcc(Path(explicit) / "bin" / "nvcc", "$HOROVOD_CUDA_HOME")
        if cuda is None:
            raise BuildEnvError(
                f"HOROVOD_CUDA_HOME='{short(explicit)}' has no working bin/nvcc with CUDA headers",
                "point HOROVOD_CUDA_HOME at a CUDA toolkit (the directory holding bin/nvcc)",
            )
        return Cuda(Path(explicit), cuda.version, cuda.source)
    usable: list[Cuda] = []
    for nvcc, source in nvcc_candidates():
        cuda = probe_nvcc(nvcc, source)
        if cuda and all(c.home != cuda.home for c in usable):
            usable.append(cuda)
    want = f"CUDA {tf_cuda_major}"
    if not usable:
        raise BuildEnvError(
            "TF=gpu builds Horovod with NCCL and needs nvcc, the CUDA compiler: none found in "
            "$HOROVOD_CUDA_HOME, $CUDA_HOME, PATH, site-packages or $GENBENCH_CUDA_ROOTS "
            "(the pip CUDA 12 wheels ship no nvcc)",
            f"install a {want} toolkit (e.g. `module load cuda`) and set CUDA_HOME to it, "
            + CPU_FIX,
        )
    for cuda in usable:
        if int(cuda.version.split(".")[0]) == tf_cuda_major:
            return cuda
    first = usable[0]
    raise BuildEnvError(
        f"TensorFlow was built with CUDA {tf_cuda_major} but the only nvcc found is CUDA "
        f"{first.version} ({first.home}); Horovod would link another CUDA runtime",
        f"install a {want} toolkit and set CUDA_HOME to it, or set "
        f"HOROVOD_CUDA_HOME={first.home} to build with CUDA {first.version} anyway",
    )


def read_nccl_version(header: Path) -> str | None:
    text = header.read_text(errors="replace")
    parts = [re.search(rf"#define\s+NCCL_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None  # type: ignore[union-attr]


def find_nccl_library(lib_dir: Path) -> Path | None:
    """libnccl.so if present, else the highest libnccl.so.N (wheels ship only that)."""
    if (lib_dir / "libnccl.so").exists():
        return lib_dir / "libnccl.so"
    versioned = sorted(lib_dir.glob("libnccl.so.*"), key=lambda p: len(p.name), reverse=True)
    return versioned[-1] if versioned else None


def nccl_at(include: Path, lib_dirs: list[Path], source: str, rpath: str | None) -> Nccl | None:
    header = include / "nccl.h"
    if not header.is_file():
        return None
    for lib_dir in lib_dirs:
        library = find_nccl_library(lib_dir)
        if library is None:
            continue
        version = read_nccl_version(header)
        if version is None:
            raise BuildEnvError(
                f"'{short(header)}' does not define NCCL_MAJOR/MINOR/PATCH",
                "point HOROVOD_NCCL_HOME at a complete NCCL 2 install",
            )
        return Nccl(include, library, version, source, rpath or str(library.parent))
    return None


def system_lib_dirs(root: Path) -> list[Path]:
    return [root / "lib64", root / "lib", *sorted(root.glob("lib/*-linux-gnu"))]


def wheel_nccl(dist: md.Distribution) -> Nccl | None:
    """NCCL inside an nvidia-nccl-cuXX wheel: nvidia/nccl/{include,lib} in site-packages."""
    site = Path(str(dist.locate_file("")))
    base = site / "nvidia" / "nccl"
    label = f"wheel {dist.metadata['Name']} {dist.version}"
    # mpi_lib.so sits in site-packages/horovod/tensorflow/: reach the wheel from there.
    return nccl_at(base / "include", [base / "lib"], label, "$ORIGIN/../../nvidia/nccl/lib")


def choose_nccl(cuda: Cuda, tf_cuda_major: int) -> Nccl:
    home = os.environ.get("HOROVOD_NCCL_HOME")
    include, lib = os.environ.get("HOROVOD_NCCL_INCLUDE"), os.environ.get("HOROVOD_NCCL_LIB")
    if home or include or lib:
        inc = Path(include) if include else Path(home or "") / "include"
        libs = [Path(lib)] if lib else system_lib_dirs(Path(home or ""))
        found = nccl_at(inc, libs, "$HOROVOD_NCCL_HOME/INCLUDE/LIB", None)
        if found is None:
            named = " ".join(f"{k}='{short(os.environ[k], 40)}'" for k in (
                "HOROVOD_NCCL_HOME", "HOROVOD_NCCL_INCLUDE", "HOROVOD_NCCL_LIB")
                if os.environ.get(k))
            raise BuildEnvError(
                f"{named} holds no nccl.h + libnccl.so* (include/, lib/ or lib64/)",
                "point HOROVOD_NCCL_HOME at an NCCL install, or unset it to use the "
                "nvidia-nccl-cu12 wheel",
            )
        return found
    wheels = nvidia_dists("nvidia-nccl")
    wheels.sort(key=lambda d: not (d.metadata["Name"] or "").endswith(f"cu{tf_cuda_major}"))
    for dist in wheels:
        found = wheel_nccl(dist)
        if found:
            return found
    places = [(cuda.home / "include", system_lib_dirs(cuda.home), f"CUDA toolkit {cuda.home}")]
    places += [(root / "include", system_lib_dirs(root), f"system {root}")
               for root in expand_roots("GENBENCH_NCCL_ROOTS", DEFAULT_NCCL_ROOTS)]
    for inc, libs, source in places:
        found = nccl_at(inc, libs, source, None)
        if found:
            return found
    raise BuildEnvError(
        "TF=gpu builds Horovod with NCCL and needs nccl.h + libnccl.so; none found (looked at: "
        "$HOROVOD_NCCL_HOME, nvidia-nccl-cuXX wheels in site-packages, the CUDA toolkit, "
        "$GENBENCH_NCCL_ROOTS)",
        f"{sys.executable} -m pip install 'nvidia-nccl-cu{tf_cuda_major}' (tensorflow[and-cuda] "
        "brings it), or set HOROVOD_NCCL_HOME=/path/to/nccl, " + CPU_FIX,
    )


def describe(variant: str, horovod_version: str) -> dict[str, str]:
    """Every decision the build makes, as NAME -> value."""
    if variant not in ("cpu", "gpu"):
        raise BuildEnvError(f"unknown variant '{short(variant)}'", "use --variant cpu or gpu")
    tf = find_tensorflow()
    if tf is None:
        raise BuildEnvError(
            f"TensorFlow is not installed in {short(sys.executable)}",
            "install it first (pip install -e '.[cpu]', or '.[gpu]' on GPU hosts)",
        )
    py_tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    with_mpi = bool(shutil.which("mpicxx") and shutil.which("mpirun"))
    out = {"VARIANT": variant, "TF_VERSION": tf.version, "PY_TAG": py_tag,
           "WITH_MPI": "1" if with_mpi else "0"}
    key = f"horovod-{horovod_version}-tf{tf.version}-{py_tag}"
    if variant == "gpu":
        tf_cuda_major = read_tf_cuda_major(tf)
        if tf_cuda_major is None:
            # Horovod's GPU ops call TensorFlow's GPU kernels (DenseUpdate<GpuDevice>):
            # built against a CPU TensorFlow, the library does not even load.
            raise BuildEnvError(
                f"TF=gpu links Horovod against TensorFlow's CUDA build, but "
                f"{tf.metadata['Name'].replace('_', '-')} {tf.version} in this env is a CPU build",
                "install TensorFlow for GPUs first (make install TF=gpu installs "
                "tensorflow[and-cuda]), " + CPU_FIX,
            )
        cuda = choose_cuda(tf_cuda_major)
        nccl = choose_nccl(cuda, tf_cuda_major)
        key += f"-cuda{cuda.version}-nccl{nccl.version}"
        cc_list = os.environ.get("HOROVOD_BUILD_CUDA_CC_LIST", "").replace(",", ".")
        key += f"-cc{cc_list}" if cc_list else ""
        out.update({
            "TF_CUDA": str(tf_cuda_major), "CUDA_HOME": str(cuda.home),
            "CUDA_VERSION": cuda.version, "CUDA_SOURCE": cuda.source,
            "NCCL_VERSION": nccl.version, "NCCL_SOURCE": nccl.source,
            "NCCL_INCLUDE": str(nccl.include), "NCCL_LIBRARY": str(nccl.library),
            "NCCL_RPATH": nccl.rpath,
        })
    out["KEY"] = key + ("-mpi" if with_mpi else "")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: horovod_build_env.py cpu|gpu HOROVOD_VERSION", file=sys.stderr)
        return 2
    try:
        decisions = describe(argv[0], argv[1])
    except BuildEnvError as err:
        print(f"horovod: error: {err.problem}\n  fix: {err.fix}", file=sys.stderr)
        return 1
    for name, value in decisions.items():
        print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
