"""Latency statistics and interleaved timing."""

from __future__ import annotations

import time

import pytest
import torch

from compressbench.profiling.timing import (
    Agreement,
    LatencyStats,
    measure_alone_and_interleaved,
    measure_interleaved,
    torch_threads,
    wait_until_idle,
)


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


def simulated(durations):
    """Callables that return their own simulated duration (ms), and a timer that reads it: the
    timing design is then tested exactly, without the machine's noise."""
    calls = []

    def make(name):
        def fn():
            calls.append(name)
            return durations(name, calls)

        return fn

    return make, calls, lambda fn: fn()


def test_alone_blocks_alternate_with_interleaved_rounds_in_rotated_order():
    make, calls, timer = simulated(lambda name, calls: 1.0)
    out = measure_alone_and_interleaved({n: make(n) for n in "ab"}, warmup=1, repeats=2, rounds=2, block=2, timer=timer)
    assert calls == ["a", "b",  # warm-up
                     "a", "b", "a", "a", "a", "b", "b", "b",  # round 0: interleaved, then alone blocks (1 untimed + 2)
                     "b", "a", "b", "b", "b", "a", "a", "a"]  # round 1, both phases rotated  # fmt: skip
    assert {n: (a.interleaved.runs, a.alone.runs, a.round_ratios) for n, a in out.items()} == {
        "a": (2, 4, (1.0, 1.0)), "b": (2, 4, (1.0, 1.0))
    }  # fmt: skip


def test_interference_from_the_previous_runner_is_measured_exactly():
    # a call right after another runner's call takes twice as long (its threads still spin)
    make, calls, timer = simulated(lambda name, calls: 2.0 if len(calls) > 1 and calls[-2] != name else 1.0)
    out = measure_alone_and_interleaved({n: make(n) for n in "abc"}, warmup=1, repeats=4, rounds=4, block=3, timer=timer)
    for agreement in out.values():
        assert agreement.interleaved.median == 2.0 and agreement.alone.median == 1.0
        assert agreement.pct == 100.0
        assert agreement.interval_pct() == (100.0, 100.0)
    # turns with an untimed switch call absorb it: interleaved and alone then agree exactly
    make, calls, timer = simulated(lambda name, calls: 2.0 if len(calls) > 1 and calls[-2] != name else 1.0)
    out = measure_alone_and_interleaved({n: make(n) for n in "abc"}, 0, 4, 4, 3, burst=2, timer=timer)
    assert {a.pct for a in out.values()} == {0.0}


def test_pairing_rounds_cancels_a_machine_that_changes_speed():
    # the machine runs 30% slower after its 48th call, whichever runner is timed
    def durations(name, calls):
        return 1.3 if len(calls) > 48 else 1.0

    make, _, timer = simulated(durations)
    paired = measure_alone_and_interleaved({n: make(n) for n in "ab"}, 0, 8, 8, 3, burst=2, timer=timer)
    assert {n: a.pct for n, a in paired.items()} == {"a": 0.0, "b": 0.0}  # the round straddling the step is outvoted
    make, _, timer = simulated(durations)
    one_slice = measure_alone_and_interleaved({n: make(n) for n in "ab"}, 0, 8, 1, 12, burst=2, timer=timer)
    # one slice: every interleaved call (48) before the step, every timed alone call after it
    assert {n: a.pct for n, a in one_slice.items()} == pytest.approx({"a": 100 * (1 / 1.3 - 1), "b": 100 * (1 / 1.3 - 1)})


def test_agreement_interval_by_hand():
    stats = LatencyStats.from_samples([1.0])
    agreement = Agreement(stats, stats, round_ratios=(0.9, 1.0, 1.1))
    assert agreement.pct == pytest.approx(0.0)
    low, high = agreement.interval_pct()
    assert low == pytest.approx(-10.0) and high == pytest.approx(10.0)  # medians of resamples lie in [0.9, 1.1]
    assert agreement.to_dict()["rounds"] == 3


@pytest.mark.parametrize(("repeats", "rounds", "block"), [(2, 3, 1), (2, 0, 1), (2, 2, 0)])
def test_bad_alone_design_rejected(repeats, rounds, block):
    with pytest.raises(ValueError):
        measure_alone_and_interleaved({"a": lambda: None}, 0, repeats, rounds, block)


def test_thread_count_is_pinned_then_restored():
    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def fake_clocks(busy_cores_per_window):
    """perf_counter, process_time and sleep of a process whose threads burn the given cores in
    successive sleep windows (then nothing)."""
    state = {"wall": 0.0, "cpu": 0.0, "window": 0}

    def sleep(seconds):
        busy = busy_cores_per_window[state["window"]] if state["window"] < len(busy_cores_per_window) else 0.0
        state["wall"] += seconds
        state["cpu"] += busy * seconds
        state["window"] += 1

    return (lambda: state["wall"], lambda: state["cpu"], sleep), state


def test_waiting_until_idle_sleeps_out_a_spinning_thread():
    # one worker spins for three 5 ms windows (tick-coarse readings: 1.9, 0.9, 1.0 cores), then sleeps
    clocks, state = fake_clocks([1.9, 0.9, 1.0])
    waited = wait_until_idle(window_s=0.005, idle_cores=0.05, cap_s=0.05, clocks=clocks)
    assert waited == pytest.approx(0.020) and state["window"] == 4  # the fourth window was idle
    clocks, state = fake_clocks([])
    assert wait_until_idle(clocks=clocks) == pytest.approx(0.005)  # already idle: one window


def test_waiting_until_idle_gives_up_at_the_cap():
    clocks, state = fake_clocks([1.0] * 100)  # a thread that never stops
    assert wait_until_idle(window_s=0.005, idle_cores=0.05, cap_s=0.05, clocks=clocks) == pytest.approx(0.05)
    assert state["window"] == 10


def test_turns_on_different_runtimes_settle_but_single_calls_do_not():
    settles = []
    fns = {name: (lambda: None) for name in "abc"}
    measure_interleaved(fns, warmup=1, repeats=2, burst=2, settle=lambda: settles.append(1))
    assert len(settles) == 6  # after each of the 3 turns in both rounds, not after warm-up calls
    settles.clear()
    measure_interleaved(fns, warmup=1, repeats=2, burst=1, settle=lambda: settles.append(1))
    assert settles == []  # eager models compared with each other: back to back, as before
    settles.clear()
    measure_alone_and_interleaved(fns, 0, 2, 2, 3, burst=2, settle=lambda: settles.append(1))
    assert len(settles) == 2 * 3 + 2 * 3  # every interleaved turn and every alone block
