"""Peak FLOP/s of the device a process trains on, and the utilisation columns of a row.

MFU (model FLOPs utilisation) = achieved matmul FLOP/s / peak matmul FLOP/s.
Where a vendor publishes a dense peak (the data-centre GPUs below) MFU divides by
it, and a measured calibration is recorded beside it; a CPU has no trustworthy
datasheet figure (clocks, AVX-512 frequency licences and core counts vary), so
its peak is measured: the best of a few large TensorFlow matrix multiplies, at
the thread count TensorFlow runs with and in the trial's compute dtype, done once
per machine and cached in the genbench cache under a key naming the CPU model,
a hash of its flags, the threads and the precision.

Cluster nodes are shared, so a calibration often competes with other work. Each
one therefore measures its own share of the cores (process CPU time over wall time
x threads); below TRUSTED_SHARE it was not alone, its figure is only a lower bound
on the peak, and it is measured again the next time the machine looks quiet. A row
never divides by a lower bound as if it were the peak: it says how its peak was
obtained (`peak_basis`, `peak_trusted`), and an achieved rate above the peak raises
the row's peak to that rate, so MFU never exceeds 1.

TensorFlow is imported only inside the functions that measure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from suite.common.atomic import write_json_atomic
from suite.common.cache_dir import cache_root
from suite.store import schema

PEAK_DIR = "peak"
CALIBRATION_FORMAT = 2  # bump when the measurement changes: old cache entries stop matching

# A calibration that got less than this share of its cores' time competed with other work.
TRUSTED_SHARE = 0.9
# How a row's peak was obtained (the `peak_basis` column).
BASIS_DATASHEET = "datasheet"
BASIS_CALIBRATED = "calibrated"
BASIS_UNDER_LOAD = "calibrated_under_load"
BASIS_ACHIEVED = "raised_to_achieved"
BASIS_UNKNOWN = "unknown"

# genbench precision policy -> the dtype its matmuls run in.
MATMUL_DTYPES = {"fp32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}

# Dense (no structured sparsity) peak TFLOP/s per GPU, boost clock. Sources: NVIDIA
# datasheets and whitepapers: "NVIDIA H100 Tensor Core GPU" datasheet and the H100
# (Hopper) architecture whitepaper (SXM5: FP32 66.9, TF32 494.7, BF16/FP16 989.4;
# the datasheet's 989/1979 TF32/BF16 figures are with sparsity, halved here); H200
# datasheet (SXM as H100 SXM; NVL: FP32 60, TF32 835*, BF16 1671* sparse); H100 NVL
# as H200 NVL per GPU; "NVIDIA A100 Tensor Core GPU" datasheet (every 40/80 GB SXM and
# PCIe part: FP32 19.5, TF32 156, BF16/FP16 312); "NVIDIA L40S" datasheet (FP32 91.6,
# TF32 183, BF16/FP16 362.05 dense); "NVIDIA V100 Tensor Core GPU" datasheet (SXM2:
# FP32 15.7, FP16 tensor 125; PCIe: 14, 112; V100S: 16.4, 130; no TF32, no BF16).
# Entries are tried in order; every token must occur in the upper-cased device name.
DATASHEET_TFLOPS: tuple[tuple[str, tuple[str, ...], dict[str, float]], ...] = (
    ("H100 PCIe", ("H100", "PCIE"), {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("H100 NVL", ("H100", "NVL"), {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H100 SXM", ("H100",), {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("H200 NVL", ("H200", "NVL"), {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H200 SXM", ("H200",), {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("A100", ("A100",), {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    ("L40S", ("L40S",), {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05}),
    ("V100S PCIe", ("V100S",), {"fp32": 16.4, "fp16": 130.0}),
    ("V100 PCIe", ("V100", "PCIE"), {"fp32": 14.0, "fp16": 112.0}),
    ("V100 SXM2", ("V100",), {"fp32": 15.7, "fp16": 125.0}),
)


@dataclass(frozen=True)
class Peak:
    """The peak MFU divides by, where it comes from, and the measured matmul rate.
    `trusted` is False when the figure is a lower bound (a calibration under load)."""

    tflops: float
    source: str  # "datasheet:<device> <precision>" or "calibration:<cpu> <n>t <precision>"
    calibrated_tflops: float | None = None
    trusted: bool = True
    cpu_share: float | None = None  # the calibration's share of its cores, where measured

    @property
    def basis(self) -> str:
        if not math.isfinite(self.tflops):
            return BASIS_UNKNOWN
        if self.source.startswith("datasheet:"):
            return BASIS_DATASHEET
        return BASIS_CALIBRATED if self.trusted else BASIS_UNDER_LOAD


@dataclass(frozen=True)
class Calibration:
    """One measured matmul rate and the share of its cores' time it got (None: unknown)."""

    tflops: float
    cpu_share: float | None = None


def datasheet_precision(precision: str, tf32_enabled: bool = True) -> str:
    """The datasheet column a policy's matmuls run at on a GPU. Mixed policies use the
    16-bit tensor-core peak. `fp32` uses TF32 when TensorFlow allows it (its default,
    tf.config.experimental.enable_tensor_float_32_execution, on Ampere and later),
    because that is what TF's float32 matmuls and convolutions then run as."""
    if precision == "mixed_bfloat16":
        return "bf16"
    if precision == "mixed_float16":
        return "fp16"
    return "tf32" if tf32_enabled else "fp32"


def datasheet_tflops(device_name: str, column: str) -> tuple[str, float] | None:
    """(label, dense peak TFLOP/s) for a GPU name such as "NVIDIA H100 80GB HBM3", or None.
    A part without TF32 (V100) runs float32 matmuls at its FP32 peak."""
    name = device_name.upper()
    for label, tokens, figures in DATASHEET_TFLOPS:
        if all(token in name for token in tokens):
            if column == "tf32" and column not in figures:
                column = "fp32"
            return (f"{label} {column}", figures[column]) if column in figures else None
    return None


def cpu_identity(cpuinfo: str | None = None) -> tuple[str, str]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("unknown", "") without it."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", "unknown"), fields.get("flags", "")


def tf_threads() -> int:
    """The intra-op threads TensorFlow runs with (0 means one per usable core)."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return threads or len(os.sched_getaffinity(0))


def calibration_key(device: str, flags: str, threads: int, precision: str) -> str:
    """A file-name-safe key naming every choice the measurement depends on."""
    readable = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", device).strip("_") or "cpu"
    flags_hash = hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]
    return f"{readable[:60]}-{flags_hash}-{threads}t-{precision}-v{CALIBRATION_FORMAT}"


def calibrate_matmul_tflops(precision: str, size: int = 2048, repeats: int = 5,
                            budget_s: float = 3.0, device: str = "/CPU:0",
                            threads: int | None = None) -> Calibration:
    """Best-of-`repeats` TFLOP/s of a `size`^2 TensorFlow matmul in the policy's dtype,
    after one warm-up (oneDNN's first call picks kernels); stops early past `budget_s`
    so an emulated dtype (bf16 without AVX512-BF16) cannot take minutes. On a CPU
    (`threads` given) the best repeat's share of its cores says whether it ran alone."""
    import tensorflow as tf

    dtype = tf.as_dtype(MATMUL_DTYPES[precision])
    with tf.device(device):
        a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
        b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
        best, share, start = math.inf, None, time.perf_counter()
        for i in range(repeats + 1):
            t0, cpu0 = time.perf_counter(), time.process_time()
            c = tf.linalg.matmul(a, b)
            c[0, 0].numpy()  # waits for the product on an asynchronous device
            wall = time.perf_counter() - t0
            if i and wall < best:  # the first run is the warm-up
                best = wall
                share = (time.process_time() - cpu0) / (wall * threads) if threads else None
            if i and time.perf_counter() - start > budget_s:
                break
    return Calibration(2 * size**3 / best / 1e12, share)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An fcntl lock: ranks of one machine calibrate once, not at once (which would
    halve each one's figure) - the others wait and read the cached result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
        value = float(record["tflops"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: measure again
    return record if value > 0 and math.isfinite(value) else None


def _busy(load: float) -> bool:
    """More runnable work than half the cores: a calibration then measures low."""
    return load > 0.5 * (os.cpu_count() or 1)


def _trusted(calibration: Calibration, load: float) -> bool:
    """Alone on its cores: judged by its measured share where known (the load average
    lags by a minute), else by the load average before it."""
    if calibration.cpu_share is not None:
        return calibration.cpu_share >= TRUSTED_SHARE
    return not _busy(load)


def _settled(record: dict | None) -> bool:
    """A cached figure stands unless it is a lower bound and the machine is quiet now."""
    if record is None:
        return False
    return bool(record.get("trusted", False)) or _busy(os.getloadavg()[0])


def _as_calibration(measured: float | Calibration) -> Calibration:
    return measured if isinstance(measured, Calibration) else Calibration(float(measured))


def _record_calibration(path: Path, key: str, measure: Callable[[], float | Calibration],
                        cached: dict | None, record: dict | None) -> dict:
    """Measure, keep the better of that and a cached lower bound (a re-measure never
    lowers a peak), and write the record atomically."""
    load = os.getloadavg()[0]
    new = _as_calibration(measure())
    trusted = _trusted(new, load)
    tflops, share = new.tflops, new.cpu_share
    if cached is not None and float(cached["tflops"]) > tflops:
        tflops, share = float(cached["tflops"]), cached.get("cpu_share")
        load = min(load, float(cached.get("loadavg_1m_before", load)))
    entry = {**(record or {}), "key": key, "tflops": tflops, "trusted": trusted,
             "cpu_share": share, "loadavg_1m_before": load, "cpu_count": os.cpu_count(),
             "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(path, entry)
    return entry


def cached_calibration(key: str, measure: Callable[[], float | Calibration],
                       record: dict | None = None, cache_dir: Path | None = None) -> dict:
    """The cached calibration record under `key` ("tflops", "trusted", "cpu_share"),
    else `measure()` once, written atomically.

    A lower bound (measured while other work held the cores) is measured again the
    first time the machine is quiet, and the better of the two is kept.
    """
    path = (cache_dir or cache_root()) / PEAK_DIR / f"{key}.json"
    cached = _read_record(path)
    if _settled(cached):
        return cached
    with _exclusive(path.with_suffix(".lock")):
        cached = _read_record(path)  # another process may have measured while we waited
        if _settled(cached):
            return cached
        return _record_calibration(path, key, measure, cached, record)


def cpu_peak(precision: str, threads: int | None = None, cache_dir: Path | None = None,
             measure: Callable[[str], float | Calibration] | None = None,
             cpuinfo: str | None = None) -> Peak:
    """The calibrated peak of this CPU at `threads` (default: TensorFlow's) and `precision`."""
    model, flags = cpu_identity(cpuinfo)
    threads = threads or tf_threads()
    if measure is None:  # the matmul at exactly the threads (and cores) the trial runs with
        def measure(p: str) -> Calibration:
            return calibrate_matmul_tflops(p, threads=threads)
    key = calibration_key(model, flags, threads, precision)
    record = {"device": model, "threads": threads, "precision": precision,
              "cores": sorted(os.sched_getaffinity(0)),
              "avx512f": "avx512f" in flags.split(), "avx512_bf16": "avx512_bf16" in flags.split()}
    entry = cached_calibration(key, lambda: measure(precision), record, cache_dir)
    tflops, share = float(entry["tflops"]), entry.get("cpu_share")
    return Peak(tflops, f"calibration:{model} {threads}t {precision}", tflops,
                trusted=bool(entry["trusted"]), cpu_share=share)


def gpu_peak(device_name: str, precision: str, calibrated_tflops: float | None,
             tf32_enabled: bool = True) -> Peak:
    """The datasheet peak when the device is in the table (calibration beside it),
    else the calibration."""
    found = datasheet_tflops(device_name, datasheet_precision(precision, tf32_enabled))
    if found is not None:
        return Peak(found[1], f"datasheet:{found[0]}", calibrated_tflops)
    if calibrated_tflops is None:
        return Peak(math.nan, f"unknown:{device_name} {precision}", None)
    return Peak(calibrated_tflops, f"calibration:{device_name} {precision}", calibrated_tflops)


def machine_peak(precision: str, cache_dir: Path | None = None) -> Peak:
    """The peak of the device this process trains on: its first visible GPU, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return cpu_peak(precision, cache_dir=cache_dir)
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    key = calibration_key(name, "", 1, f"{precision}-tf32" if tf32 else precision)
    entry = cached_calibration(
        key, lambda: calibrate_matmul_tflops(precision, size=8192, device="/GPU:0"),
        {"device": name, "precision": precision, "tf32": tf32}, cache_dir)
    return gpu_peak(name, precision, float(entry["tflops"]), tf32)


def row_peak(peak: Peak, achieved_per_device: float) -> tuple[float, str, bool]:
    """(peak TFLOP/s, basis, trusted) a row divides by: the device's peak, or the row's
    own achieved rate where that is higher (the measured peak was too low: a lower bound
    taken under load, or a matmul slower than the trial's convolutions)."""
    if math.isfinite(achieved_per_device) and achieved_per_device > peak.tflops:
        return achieved_per_device, BASIS_ACHIEVED, False
    return peak.tflops, peak.basis, peak.trusted and math.isfinite(peak.tflops)


def utilisation_columns(flops_per_image: int | None, images_per_sec: float, peak: Peak,
                        devices: int = 1, eval_flops_per_image: int | None = None) -> dict:
    """A row's FLOP columns. `images_per_sec` is over all `devices` (a trial's workers),
    each with `peak`; a missing count or rate gives NaN, never a made-up figure, and MFU
    is never above 1 (see `row_peak`)."""
    nan = math.nan
    achieved = (flops_per_image * images_per_sec / 1e12
                if flops_per_image is not None and math.isfinite(images_per_sec) else nan)
    per_device, basis, trusted = row_peak(peak, achieved / max(devices, 1))
    total_peak = per_device * devices
    mfu = achieved / total_peak if total_peak > 0 and math.isfinite(total_peak) else nan
    calibrated = nan if peak.calibrated_tflops is None else peak.calibrated_tflops
    share = nan if peak.cpu_share is None else peak.cpu_share
    return {schema.FLOPS_PER_IMAGE: flops_per_image,
            schema.EVAL_FLOPS_PER_IMAGE: eval_flops_per_image,
            schema.ACHIEVED_TFLOPS: achieved, schema.PEAK_TFLOPS: per_device,
            schema.PEAK_SOURCE: peak.source, schema.PEAK_CALIBRATED_TFLOPS: calibrated,
            schema.PEAK_BASIS: basis, schema.PEAK_TRUSTED: trusted,
            schema.PEAK_CPU_SHARE: share, schema.MFU: mfu}
