"""Peak FLOP/s: datasheet lookup, the calibration cache, and the utilisation columns."""

from __future__ import annotations

import json
import math

import pytest

from suite.machine import peak as pk
from suite.machine.peak import Peak


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch):
    """Cache behaviour depends on the load average: fix it, so other work cannot flip it."""
    monkeypatch.setattr(pk.os, "getloadavg", lambda: (0.0, 0.0, 0.0))


CPUINFO = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f\n"


@pytest.mark.parametrize("name, precision, tf32, expected", [
    ("NVIDIA H100 80GB HBM3", "mixed_bfloat16", True, ("H100 SXM bf16", 989.4)),
    ("NVIDIA H100 80GB HBM3", "fp32", True, ("H100 SXM tf32", 494.7)),
    ("NVIDIA H100 PCIe", "mixed_float16", True, ("H100 PCIe fp16", 756.0)),
    ("NVIDIA H200", "mixed_bfloat16", True, ("H200 SXM bf16", 989.4)),
    ("NVIDIA H200 NVL", "mixed_bfloat16", True, ("H200 NVL bf16", 835.5)),
    ("NVIDIA A100-SXM4-40GB", "fp32", True, ("A100 tf32", 156.0)),
    ("NVIDIA A100 80GB PCIe", "fp32", False, ("A100 fp32", 19.5)),
    ("NVIDIA L40S", "mixed_bfloat16", True, ("L40S bf16", 362.05)),
    ("Tesla V100-SXM2-32GB", "fp32", True, ("V100 SXM2 fp32", 15.7)),  # no TF32 on Volta
    ("Tesla V100-PCIE-16GB", "mixed_float16", True, ("V100 PCIe fp16", 112.0)),
    ("Tesla V100-SXM2-16GB", "mixed_bfloat16", True, None),  # no bf16 figure
    ("NVIDIA GeForce RTX 4090", "fp32", True, None),
])
def test_datasheet_lookup(name, precision, tf32, expected):
    column = pk.datasheet_precision(precision, tf32)
    assert pk.datasheet_tflops(name, column) == expected


def test_gpu_peak_uses_the_datasheet_and_keeps_the_calibration_beside_it():
    p = pk.gpu_peak("NVIDIA H100 80GB HBM3", "mixed_bfloat16", calibrated_tflops=700.0)
    assert p == Peak(989.4, "datasheet:H100 SXM bf16", 700.0)
    unknown = pk.gpu_peak("NVIDIA RTX A4000", "fp32", calibrated_tflops=12.0)
    assert unknown == Peak(12.0, "calibration:NVIDIA RTX A4000 fp32", 12.0)
    assert math.isnan(pk.gpu_peak("Mystery", "fp32", None).tflops)


def test_cpu_identity_parses_cpuinfo():
    assert pk.cpu_identity(CPUINFO) == ("Test CPU 9000", "fpu sse2 avx2 avx512f")
    assert pk.cpu_identity("") == ("unknown", "")


def test_cache_key_names_every_choice():
    base = pk.calibration_key("Test CPU 9000", "avx2 avx512f", 2, "fp32")
    assert base == pk.calibration_key("Test CPU 9000", "avx512f avx2", 2, "fp32")  # order-free
    others = {pk.calibration_key("Test CPU 9000", "avx2", 2, "fp32"),
              pk.calibration_key("Test CPU 9000", "avx2 avx512f", 1, "fp32"),
              pk.calibration_key("Test CPU 9000", "avx2 avx512f", 2, "mixed_bfloat16"),
              pk.calibration_key("Other CPU", "avx2 avx512f", 2, "fp32")}
    assert base not in others and len(others) == 4
    assert "/" not in pk.calibration_key("Intel(R) Xeon(R) @ 2.30GHz / x", "", 1, "fp32")


def test_calibration_is_measured_once_and_cached(tmp_path):
    calls = []

    def measure(precision):
        calls.append(precision)
        return 0.19

    first = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    again = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    assert calls == ["fp32"] and first == again
    assert first == Peak(0.19, "calibration:Test CPU 9000 2t fp32", 0.19)
    pk.cpu_peak("fp32", threads=1, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    assert calls == ["fp32", "fp32"]  # another thread count is another measurement
    (entry,) = [p for p in (tmp_path / "peak").glob("*-2t-fp32-*.json")]
    record = json.loads(entry.read_text())
    assert record["tflops"] == 0.19 and record["avx512f"] and not record["avx512_bf16"]


def test_a_damaged_cache_entry_is_measured_again(tmp_path):
    key = pk.calibration_key("Test CPU 9000", "fpu sse2 avx2 avx512f", 2, "fp32")
    (tmp_path / "peak").mkdir()
    (tmp_path / "peak" / f"{key}.json").write_text("{not json")
    p = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=lambda _: 0.5, cpuinfo=CPUINFO)
    assert p.tflops == 0.5


def test_real_tensorflow_calibration_runs_once(tmp_path, monkeypatch):
    """A real (small) TF matmul; the second call reads the cache and never times again."""
    timed = []
    real = pk.calibrate_matmul_tflops

    def small(precision):
        timed.append(precision)
        return real(precision, size=256, repeats=2)

    first = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=small)
    monkeypatch.setattr(pk.time, "perf_counter", lambda: pytest.fail("re-timed"))
    second = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=small)
    assert timed == ["fp32"] and first == second and first.tflops > 0
    assert first.source.startswith("calibration:") and first.source.endswith(" 2t fp32")


def test_utilisation_columns():
    peak = Peak(0.2, "calibration:Test CPU 9000 2t fp32", 0.2)
    cols = pk.utilisation_columns(451_671_808, 300.0, peak, eval_flops_per_image=5_700_000_000)
    assert cols["achieved_tflops"] == pytest.approx(451_671_808 * 300 / 1e12)
    assert cols["mfu"] == pytest.approx(451_671_808 * 300 / 1e12 / 0.2)
    assert cols["peak_tflops"] == 0.2 and cols["peak_calibrated_tflops"] == 0.2
    assert cols["peak_source"] == peak.source and cols["eval_flops_per_image"] == 5_700_000_000
    assert set(cols) == {"flops_per_image", "eval_flops_per_image", "achieved_tflops",
                         "peak_tflops", "peak_source", "mfu", "peak_calibrated_tflops",
                         "peak_basis", "peak_trusted", "peak_cpu_share"}
    # Two workers: the trial's rate is over both devices' peaks.
    two = pk.utilisation_columns(1e9, 200.0, Peak(1.0, "x"), devices=2)
    assert two["mfu"] == pytest.approx(0.1)
    missing = pk.utilisation_columns(None, 300.0, Peak(989.4, "datasheet:H100 SXM bf16"))
    assert math.isnan(missing["achieved_tflops"]) and math.isnan(missing["mfu"])
    assert math.isnan(missing["peak_calibrated_tflops"])


def test_a_busy_calibration_is_measured_again_when_quiet_and_never_lowered(tmp_path,
                                                                           monkeypatch):
    """A figure taken under load is re-measured the first time the machine is quiet; the
    better of the two is kept, and a quiet figure is never measured again."""
    cores = 4
    monkeypatch.setattr(pk.os, "cpu_count", lambda: cores)
    figures = iter([0.05, 0.2, 0.1])
    calls = []

    def measure() -> float:
        calls.append(1)
        return next(figures)

    def at_load(load: float) -> float:
        monkeypatch.setattr(pk.os, "getloadavg", lambda: (load, load, load))
        return pk.cached_calibration("k", measure, cache_dir=tmp_path)["tflops"]

    assert at_load(3.0) == 0.05 and len(calls) == 1  # busy: measured, cached
    assert at_load(3.5) == 0.05 and len(calls) == 1  # still busy: the cache answers
    assert at_load(0.5) == 0.2 and len(calls) == 2  # quiet now: measured again, better
    assert at_load(0.5) == 0.2 and len(calls) == 2  # a quiet figure stands
    record = json.loads(next((tmp_path / pk.PEAK_DIR).glob("k.json")).read_text())
    assert record["tflops"] == 0.2 and record["loadavg_1m_before"] == 0.5
