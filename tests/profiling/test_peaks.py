"""Measured peaks: cached per machine fingerprint and thread count, reused, re-measured when asked."""

from __future__ import annotations

import json

import pytest

from compressbench.profiling import peaks as peaks_module
from compressbench.profiling.health import Health
from compressbench.profiling.machine import fingerprint_from_text
from compressbench.profiling.peaks import Peaks, best_rate, cache_path, machine_peaks

MACHINE = fingerprint_from_text("model name\t: Test CPU\nflags\t: avx2 avx512f\n", cores=2)


@pytest.fixture
def counted(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path))
    calls = []

    def fake(machine, threads, budget_s=0.0):
        calls.append(threads)
        return Peaks(10.0 * threads, 9.0, None, None, 5.0, threads, machine.key)

    monkeypatch.setattr(peaks_module, "measure_peaks", fake)
    monkeypatch.setattr(peaks_module, "check_health", lambda threads=None: Health())  # a quiet machine
    return calls


def test_cached_and_reused(counted, tmp_path):
    first = machine_peaks(2, machine=MACHINE)
    again = machine_peaks(2, machine=MACHINE)
    assert first == again and counted == [2]
    path = tmp_path / f"peaks-{MACHINE.key}-t2.json"
    assert cache_path(MACHINE.key, 2) == path
    doc = json.loads(path.read_text())
    assert doc["peaks"]["fp32_gemm_gmacs"] == 20.0 and doc["machine"]["key"] == MACHINE.key
    machine_peaks(1, machine=MACHINE)  # another thread count is another peak
    assert counted == [2, 1]
    machine_peaks(2, machine=MACHINE, refresh=True)
    assert counted == [2, 1, 2]


def test_peaks_of_a_busy_moment_are_not_cached(counted, monkeypatch):
    monkeypatch.setattr(peaks_module, "check_health", lambda threads=None: Health(("oversubscribed",)))
    busy = machine_peaks(2, machine=MACHINE)
    assert busy.healthy is False and not cache_path(MACHINE.key, 2).exists()
    machine_peaks(2, machine=MACHINE)
    assert counted == [2, 2]  # measured again: nothing was cached


def test_broken_cache_is_measured_again(counted, tmp_path):
    cache_path(MACHINE.key, 2).write_text("{broken")
    assert machine_peaks(2, machine=MACHINE).fp32_gemm_gmacs == 20.0 and counted == [2]
    assert machine_peaks(2, machine=MACHINE).fp32_gemm_gmacs == 20.0 and counted == [2]


def test_best_rate_keeps_the_fastest_run(monkeypatch):
    ticks = iter([0.0, 0.0, 1.0, 1.0, 1.5, 1.5, 3.5, 3.5, 99.0])  # runs of 1.0, 0.5 and 2.0 s
    monkeypatch.setattr(peaks_module.time, "perf_counter", lambda: next(ticks))
    assert best_rate(lambda: None, work=100.0, budget_s=0.0) == pytest.approx(200.0)


def test_real_micro_benchmark_is_short():
    measured = peaks_module.measure_peaks(MACHINE, threads=1, budget_s=0.01)
    assert measured.fp32_gemm_gmacs > 0 and measured.bandwidth_gbs > 0
    assert measured.bf16_gemm_gmacs is None and measured.int8_gemm_gmacs is None  # the test CPU has neither
