"""A peak measured under load is a lower bound: rows say so, and MFU never exceeds 1."""

from __future__ import annotations

import json
import math

import pytest

from suite.machine import peak as pk
from suite.machine.peak import Calibration, Peak
from suite.store import schema

CPUINFO = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 avx512f\n"


@pytest.fixture(autouse=True)
def quiet_load_average(monkeypatch):
    """The load average lags by a minute; these cases are judged by the measured share."""
    monkeypatch.setattr(pk.os, "getloadavg", lambda: (0.0, 0.0, 0.0))


def test_a_calibration_that_shared_its_cores_is_a_lower_bound_and_measured_again(tmp_path):
    figures = iter([Calibration(0.111, cpu_share=0.52), Calibration(0.209, cpu_share=0.99),
                    Calibration(0.150, cpu_share=0.98)])
    calls = []

    def measure(precision: str) -> Calibration:
        calls.append(precision)
        return next(figures)

    busy = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    assert not busy.trusted and busy.basis == pk.BASIS_UNDER_LOAD and busy.cpu_share == 0.52
    quiet = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    assert quiet.trusted and quiet.basis == pk.BASIS_CALIBRATED and quiet.tflops == 0.209
    again = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=measure, cpuinfo=CPUINFO)
    assert again == quiet and len(calls) == 2  # a trusted figure stands
    (entry,) = (tmp_path / pk.PEAK_DIR).glob("*.json")
    record = json.loads(entry.read_text())
    assert record["trusted"] and record["cpu_share"] == 0.99 and record["cores"]


def test_a_re_measure_under_load_never_lowers_the_bound(tmp_path):
    figures = iter([Calibration(0.15, cpu_share=0.6), Calibration(0.09, cpu_share=0.4)])
    first = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=lambda _: next(figures),
                        cpuinfo=CPUINFO)
    second = pk.cpu_peak("fp32", threads=2, cache_dir=tmp_path, measure=lambda _: next(figures),
                         cpuinfo=CPUINFO)
    assert first.tflops == second.tflops == 0.15 and not second.trusted


def test_the_issue_row_no_longer_records_an_impossible_mfu():
    """dcgan/transpose at batch 256: 0.211 TFLOP/s achieved against a 0.111 peak
    calibrated under load recorded mfu 1.897."""
    peak = Peak(0.111, "calibration:Test CPU 9000 2t fp32", 0.111, trusted=False, cpu_share=0.53)
    flops_per_image = 451_671_808
    rate = 0.211e12 / flops_per_image
    cols = pk.utilisation_columns(flops_per_image, rate, peak)
    assert cols[schema.MFU] <= 1.0
    assert cols[schema.PEAK_TFLOPS] == pytest.approx(0.211)
    assert cols[schema.PEAK_BASIS] == pk.BASIS_ACHIEVED and cols[schema.PEAK_TRUSTED] is False
    assert cols[schema.PEAK_CALIBRATED_TFLOPS] == 0.111  # what was measured stays visible
    assert cols[schema.PEAK_CPU_SHARE] == 0.53


@pytest.mark.parametrize("peak, basis, trusted", [
    (Peak(0.2, "calibration:x 2t fp32", 0.2, trusted=True, cpu_share=1.0),
     pk.BASIS_CALIBRATED, True),
    (Peak(0.2, "calibration:x 2t fp32", 0.2, trusted=False, cpu_share=0.5),
     pk.BASIS_UNDER_LOAD, False),
    (Peak(989.4, "datasheet:H100 SXM bf16", 700.0), pk.BASIS_DATASHEET, True),
    (Peak(math.nan, "unknown", None), pk.BASIS_UNKNOWN, False),
])
def test_every_row_says_how_its_peak_was_obtained(peak, basis, trusted):
    cols = pk.utilisation_columns(1_000_000, 100.0, peak)  # 1e-4 TFLOP/s: below every peak
    assert cols[schema.PEAK_BASIS] == basis and cols[schema.PEAK_TRUSTED] is trusted
    assert math.isnan(cols[schema.MFU]) or cols[schema.MFU] <= 1.0


def test_two_workers_raise_the_peak_per_device():
    cols = pk.utilisation_columns(1e9, 600.0, Peak(0.2, "x", 0.2), devices=2)  # 0.3 per device
    assert cols[schema.PEAK_TFLOPS] == pytest.approx(0.3) and cols[schema.MFU] == pytest.approx(1)
