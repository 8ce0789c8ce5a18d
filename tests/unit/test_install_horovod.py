"""tools/install-horovod.sh --dry-run: the build decisions, fed faked hosts.

Each test makes a real venv (no pip) whose site-packages holds fake wheel layouts
(a TensorFlow dist, an nvidia-nccl-cuXX wheel's nvidia/nccl/{include,lib}), fake
CUDA toolkits (an executable nvcc that answers --version and --dryrun, plus
include/cuda_runtime.h) in temp dirs, and runs the real script with a PATH and
search roots that see only those. Nothing is built: --dry-run changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "install-horovod.sh"
HVD = "0.28.1"
PY_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"
# Variables that would let the host's own CUDA/NCCL/Horovod settings leak into a test.
LEAKY = ("CUDA_HOME", "CUDA_PATH", "HOROVOD_CUDA_HOME", "HOROVOD_NCCL_HOME",
         "HOROVOD_NCCL_INCLUDE", "HOROVOD_NCCL_LIB", "HOROVOD_BUILD_CUDA_CC_LIST",
         "HOROVOD_GPU_OPERATIONS", "LDFLAGS", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass
class Host:
    """A faked machine: one venv, a bin dir first on PATH, empty default search roots."""

    root: Path
    venv: Path
    site: Path
    bin: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def add_dist(self, name: str, version: str, files: dict[str, str] | None = None) -> None:
        """A dist-info as pip writes it, plus the package files it ships."""
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        for rel, text in (files or {}).items():
            path = self.site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def add_tensorflow(self, cuda: str | None) -> None:
        """tensorflow-cpu (cuda=None) or tensorflow built with CUDA `cuda` (and-cuda)."""
        if cuda is None:
            info = "[('is_cuda_build', False), ('is_rocm_build', False)]"
            self.add_dist("tensorflow-cpu", "2.21.0", {
                "tensorflow/python/platform/build_info.py": f"build_info = dict({info})\n"})
        else:
            info = f"[('cuda_version', '{cuda}'), ('cudnn_version', '9'), ('is_cuda_build', True)]"
            self.add_dist("tensorflow", "2.21.0", {
                "tensorflow/python/platform/build_info.py": f"build_info = dict({info})\n"})

    def add_nccl_wheel(self, cu: int, version: str) -> None:
        major, minor, patch = version.split(".")
        self.add_dist(f"nvidia-nccl-cu{cu}", version, {
            "nvidia/nccl/include/nccl.h": nccl_header(version),
            "nvidia/nccl/lib/libnccl.so.2": "",
        })

    def add_cuda(self, version: str, name: str | None = None, dryrun: bool = True) -> Path:
        """A CUDA toolkit dir with an nvcc that behaves like the real one; returns its home.

        dryrun=False: an nvcc that cannot say where it lives (`--dryrun` prints nothing).
        """
        home = self.root / (name or f"cuda-{version}")
        (home / "bin").mkdir(parents=True)
        (home / "include").mkdir()
        (home / "include" / "cuda_runtime.h").write_text("/* fake */\n")
        nvcc = home / "bin" / "nvcc"
        nvcc.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            case "$1" in
              --version) echo "Cuda compilation tools, release {version}, V{version}.99";;
              --dryrun) {f'echo "#$ _HERE_={home}/bin" >&2' if dryrun else ':'};;
              *) echo "fake nvcc: $*" >&2; exit 1;;
            esac
            """))
        nvcc.chmod(0o755)
        return home

    def put_on_path(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def dry_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), "--dry-run", *args, str(self.python)],
            env=self.env, capture_output=True, text=True, timeout=120, check=False)


def nccl_header(version: str) -> str:
    major, minor, patch = version.split(".")
    return (f"#define NCCL_MAJOR {major}\n#define NCCL_MINOR {minor}\n"
            f"#define NCCL_PATCH {patch}\n#define NCCL_SUFFIX \"\"\n")


def decisions(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """NAME=value lines (and 'ENV NAME=value' build lines as 'ENV NAME')."""
    assert done.returncode == 0, done.stderr
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if "=" in line and not line.startswith("horovod:"):
            name, value = line.split("=", 1)
            out[name] = value
    return out


@pytest.fixture
def host(tmp_path) -> Host:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    # Only the fake bin dir and the base system: no /usr/local/bin (a real nvcc may be there).
    env.update(PATH=f"{fake_bin}:/usr/bin:/bin", GENBENCH_CACHE=str(tmp_path / "cache"),
               GENBENCH_CUDA_ROOTS="", GENBENCH_NCCL_ROOTS="")
    return Host(tmp_path, venv, site, fake_bin, env)


def mpi_suffix(host: Host) -> str:
    found = [shutil.which(tool, path=host.env["PATH"]) for tool in ("mpicxx", "mpirun")]
    return "-mpi" if all(found) else ""


def test_cpu_variant_keeps_the_gloo_build_and_its_key(host):
    host.add_tensorflow(cuda=None)
    host.add_cuda("12.4")  # present, but a CPU build never looks for it
    host.env["CUDA_HOME"] = str(host.root / "cuda-12.4")
    got = decisions(host.dry_run())
    key = f"horovod-{HVD}-tf2.21.0-{PY_TAG}{mpi_suffix(host)}"
    assert got["VARIANT"] == "cpu"
    assert got["KEY"] == key
    assert got["CACHE_DIR"] == f"{host.root}/cache/wheels/{key}"
    assert got["ACTION"] == "build"
    assert got["ENV HOROVOD_WITH_TENSORFLOW"] == "1" and got["ENV HOROVOD_WITH_GLOO"] == "1"
    assert not any(name.startswith(("ENV HOROVOD_GPU", "ENV HOROVOD_NCCL", "CUDA", "NCCL"))
                   for name in got), got
    assert not (host.root / "cache").exists(), "a dry run must not create the cache"


def test_gpu_variant_uses_the_nccl_wheel_and_names_cuda_and_nccl_in_the_key(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    cuda = host.add_cuda("12.4")
    host.env["CUDA_HOME"] = str(cuda)
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["KEY"] == f"horovod-{HVD}-tf2.21.0-{PY_TAG}-cuda12.4-nccl2.27.7{mpi_suffix(host)}"
    assert got["ACTION"] == "build"
    assert got["ENV HOROVOD_GPU_OPERATIONS"] == "NCCL"
    assert got["ENV HOROVOD_CUDA_HOME"] == str(cuda)
    assert got["ENV HOROVOD_NCCL_INCLUDE"] == str(host.site / "nvidia/nccl/include")
    assert got["NCCL_LIBRARY"] == str(host.site / "nvidia/nccl/lib/libnccl.so.2")
    assert got["NCCL_SOURCE"] == "wheel nvidia-nccl-cu12 2.27.7"
    # The wheel has only libnccl.so.2: the build links it through a libnccl.so symlink,
    # shared, and finds it at run time from site-packages/horovod/tensorflow/.
    assert got["ENV HOROVOD_NCCL_LIB"] == "<build dir>/nccl-lib"
    assert got["ENV HOROVOD_NCCL_LINK"] == "SHARED"
    assert got["ENV LDFLAGS"] == "-Wl,-rpath,$ORIGIN/../../nvidia/nccl/lib"


@pytest.mark.parametrize(("cuda", "nccl"), [("12.4", "2.27.7"), ("12.8", "2.27.7"),
                                            ("12.4", "2.26.2")])
def test_gpu_cache_key_changes_with_cuda_and_nccl_versions(host, cuda, nccl):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, nccl)
    host.env["CUDA_HOME"] = str(host.add_cuda(cuda))
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["KEY"].endswith(f"-cuda{cuda}-nccl{nccl}{mpi_suffix(host)}")
    assert got["CUDA_VERSION"] == cuda and got["NCCL_VERSION"] == nccl


def test_nvcc_on_path_may_be_a_wrapper_script(host):
    """/usr/local/bin/nvcc here is `exec /usr/local/cuda-13.0/bin/nvcc "$@"`."""
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    real = host.add_cuda("12.8")
    host.put_on_path("nvcc", f'#!/bin/sh\nexec {real}/bin/nvcc "$@"\n')
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["CUDA_HOME"] == str(real)
    assert got["CUDA_SOURCE"] == "nvcc on PATH"
    assert "-cuda12.8-nccl2.27.7" in got["KEY"]


def test_nvcc_on_path_may_be_a_symlink_into_the_toolkit(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    real = host.add_cuda("12.2", dryrun=False)
    (host.bin / "nvcc").symlink_to(real / "bin" / "nvcc")
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["CUDA_HOME"] == str(real) and "-cuda12.2-" in got["KEY"]


def test_gpu_variant_needs_tensorflows_cuda_build(host):
    """Horovod's GPU ops link TF's GPU kernels: against tensorflow-cpu they do not load."""
    host.add_tensorflow(cuda=None)
    host.add_nccl_wheel(12, "2.27.7")
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1
    assert "tensorflow-cpu 2.21.0 in this env is a CPU build" in done.stderr
    assert "make install TF=gpu" in done.stderr and "Traceback" not in done.stderr


def test_missing_nvcc_is_one_clear_error_with_the_fix(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    # nvcc-less "toolkits": the pip nvcc wheel (ptxas only) and a dir with headers only.
    host.add_dist("nvidia-cuda-nvcc-cu12", "12.5.82", {"nvidia/cuda_nvcc/bin/ptxas": ""})
    (host.root / "headers-only/include").mkdir(parents=True)
    host.env["GENBENCH_CUDA_ROOTS"] = str(host.root / "headers-only")
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1
    assert done.stderr.startswith("horovod: error: ") and "nvcc" in done.stderr
    assert "fix: install a CUDA 12 toolkit" in done.stderr and "CUDA_HOME" in done.stderr
    assert "TF=cpu" in done.stderr
    assert "Traceback" not in done.stderr and "KEY=" not in done.stdout


def test_missing_nccl_is_one_clear_error_with_the_fix(host):
    host.add_tensorflow(cuda="12.5.1")
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1
    assert done.stderr.startswith("horovod: error: ") and "nccl.h" in done.stderr
    assert "pip install 'nvidia-nccl-cu12'" in done.stderr
    assert "HOROVOD_NCCL_HOME" in done.stderr and "Traceback" not in done.stderr


def test_nccl_wheel_without_its_library_is_not_enough(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_dist("nvidia-nccl-cu12", "2.27.7",
                  {"nvidia/nccl/include/nccl.h": nccl_header("2.27.7")})
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1 and "libnccl.so" in done.stderr


def test_toolkit_of_tensorflows_cuda_major_wins(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    host.env["CUDA_HOME"] = str(host.add_cuda("13.0"))
    cuda12 = host.add_cuda("12.6")
    host.env["GENBENCH_CUDA_ROOTS"] = f"{host.root}/cuda-1*"
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["CUDA_HOME"] == str(cuda12) and got["TF_CUDA"] == "12"
    assert "-cuda12.6-" in got["KEY"]


def test_only_another_cuda_major_is_an_error_unless_chosen_explicitly(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    cuda13 = host.add_cuda("13.0")
    host.env["CUDA_HOME"] = str(cuda13)
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1
    assert "built with CUDA 12" in done.stderr and "CUDA 13.0" in done.stderr
    assert f"HOROVOD_CUDA_HOME={cuda13}" in done.stderr
    host.env["HOROVOD_CUDA_HOME"] = str(cuda13)
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["CUDA_SOURCE"] == "$HOROVOD_CUDA_HOME" and "-cuda13.0-" in got["KEY"]


def test_system_nccl_is_linked_in_place(host):
    """No wheel: NCCL from a system root (Debian's libnccl-dev layout)."""
    host.add_tensorflow(cuda="12.5.1")
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    usr = host.root / "usr"
    (usr / "include").mkdir(parents=True)
    (usr / "include/nccl.h").write_text(nccl_header("2.21.5"))
    lib = usr / "lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libnccl.so.2").write_text("")
    (lib / "libnccl.so").symlink_to("libnccl.so.2")
    host.env["GENBENCH_NCCL_ROOTS"] = str(usr)
    got = decisions(host.dry_run("--variant", "gpu"))
    assert got["NCCL_SOURCE"] == f"system {usr}"
    assert got["ENV HOROVOD_NCCL_LIB"] == str(lib)
    assert got["ENV LDFLAGS"] == f"-Wl,-rpath,{lib}"
    assert "-nccl2.21.5" in got["KEY"]


def test_explicit_nccl_home_without_nccl_is_an_error(host):
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    empty = host.root / "nccl-empty"
    empty.mkdir()
    host.env["HOROVOD_NCCL_HOME"] = str(empty)
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1
    assert "HOROVOD_NCCL_HOME=" in done.stderr and "fix:" in done.stderr


def test_cached_and_installed_wheels_are_told_apart_by_full_key(host):
    """An installed GPU wheel must not pass for the CPU one (its key is a prefix)."""
    host.add_tensorflow(cuda="12.5.1")
    host.add_nccl_wheel(12, "2.27.7")
    host.env["CUDA_HOME"] = str(host.add_cuda("12.4"))
    gpu_key = decisions(host.dry_run("--variant", "gpu"))["KEY"]
    cpu_key = decisions(host.dry_run())["KEY"]
    assert gpu_key.startswith(cpu_key)
    wheel = f"horovod-{HVD}-{PY_TAG}-{PY_TAG}-linux_x86_64.whl"
    url = f"file://{host.root}/cache/wheels/{gpu_key}/{wheel}"
    host.add_dist("horovod", HVD)
    (host.site / f"horovod-{HVD}.dist-info/direct_url.json").write_text(
        f'{{"url": "{url}", "dir_info": {{}}}}')
    for dep in ("cloudpickle", "psutil", "yaml", "packaging"):
        host.add_dist(dep, "1.0", {f"{dep}/__init__.py": ""})
    assert decisions(host.dry_run("--variant", "gpu"))["ACTION"] == "installed"
    assert decisions(host.dry_run())["ACTION"] == "build"
    cached = host.root / "cache" / "wheels" / cpu_key
    cached.mkdir(parents=True)
    (cached / wheel).write_text("")
    assert decisions(host.dry_run())["ACTION"] == "install-cached"


def test_unknown_variant_and_missing_tensorflow_are_user_errors(host):
    done = host.dry_run("--variant", "rocm")
    assert done.returncode == 1 and "unknown variant 'rocm'" in done.stderr
    done = host.dry_run("--variant", "gpu")
    assert done.returncode == 1 and "TensorFlow is not installed" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_passes_tf_to_the_script_and_keeps_the_nccl_build_out_of_test():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "MAKEFLAGS": ""}
    for tf in ("cpu", "gpu"):
        shown = subprocess.run([make, "-n", "-C", str(REPO), "install", f"TF={tf}"],
                               env=env, capture_output=True, text=True, check=True).stdout
        assert f"tools/install-horovod.sh --variant {tf} .venv/bin/python" in shown
    shown = subprocess.run([make, "-n", "-C", str(REPO), "test"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "build-horovod-nccl" not in shown
    shown = subprocess.run([make, "-n", "-C", str(REPO), "horovod-nccl"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "tools/build-horovod-nccl.sh" in shown
