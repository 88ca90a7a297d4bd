"""Latency statistics and interleaved timing."""

from __future__ import annotations

import time

import pytest
import torch

from compressbench.profiling.timing import LatencyStats, measure_interleaved, torch_threads


def test_quantiles_by_hand():
    stats = LatencyStats.from_samples(range(1, 11))  # 1..10
    assert stats.median == 5.5
    assert stats.p10 == pytest.approx(1.9)  # position 0.9 between 1 and 2
    assert stats.p90 == pytest.approx(9.1)
    assert stats.iqr == pytest.approx(7.75 - 3.25)
    assert stats.runs == 10
    assert stats.to_dict()["median"] == 5.5


def test_empty_samples_rejected():
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_interleaving_rotates_order_and_counts_runs():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    stats = measure_interleaved(fns, warmup=1, repeats=3)
    assert calls[:3] == ["a", "b", "c"]  # warm-up round
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {name: s.runs for name, s in stats.items()} == {"a": 3, "b": 3, "c": 3}


def test_bursts_time_consecutive_calls_after_one_untimed_switch_call():
    calls, slow_after_switch = [], {"last": None}

    def make(name):
        def fn():
            calls.append(name)
            if slow_after_switch["last"] != name:  # the first call after another runner is slow
                slow_after_switch["last"] = name
                time.sleep(0.02)

        return fn

    stats = measure_interleaved({name: make(name) for name in "ab"}, warmup=0, repeats=2, burst=3)
    assert calls == ["a"] * 4 + ["b"] * 4 + ["b"] * 4 + ["a"] * 4  # rotated turns of 1 untimed + 3 timed
    assert {name: s.runs for name, s in stats.items()} == {"a": 6, "b": 6}
    assert max(max(s.samples_ms) for s in stats.values()) < 15  # no timed call paid for a switch


@pytest.mark.parametrize("burst", [0, -1])
def test_bad_burst_rejected(burst):
    with pytest.raises(ValueError):
        measure_interleaved({"a": lambda: None}, warmup=0, repeats=1, burst=burst)


def test_bad_repeats_rejected():
    with pytest.raises(ValueError):
        measure_interleaved({"a": lambda: None}, warmup=0, repeats=0)


def test_thread_count_is_pinned_then_restored():
    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
