"""Pareto fronts and the best variant, on hand-made rows."""

from __future__ import annotations

from compressbench.metrics import fastest_within, within_bound
from compressbench.report.pareto import best_variant, most_faithful, pareto_front

ROWS = [
    {"variant": "teacher", "latency_ms": 25.0, "akd_px": 0.0},
    {"variant": "fast-bad", "latency_ms": 2.0, "akd_px": 5.0},
    {"variant": "mid", "latency_ms": 5.0, "akd_px": 0.8},
    {"variant": "dominated", "latency_ms": 6.0, "akd_px": 0.9},
    {"variant": "slow-good", "latency_ms": 10.0, "akd_px": 0.2},
    {"variant": "unmeasured", "latency_ms": None, "akd_px": 0.1},
]


def test_front_excludes_dominated_and_unmeasured():
    assert pareto_front(ROWS) == ["teacher", "fast-bad", "mid", "slow-good"]


def test_best_is_fastest_within_budget():
    assert best_variant(ROWS, 1.0) == "mid"
    assert best_variant(ROWS, 0.5) == "slow-good"
    assert best_variant(ROWS, 10.0) == "fast-bad"


def test_no_variant_within_the_bound_is_said_so_and_the_bound_itself_is_within():
    rows = [ROWS[0], {"variant": "a", "latency_ms": 1.0, "akd_px": 3.0}, {"variant": "b", "latency_ms": 2.0, "akd_px": 2.0}]
    assert best_variant(rows, 1.0) is None  # the same answer as the search's "no winner"
    assert most_faithful(rows)["variant"] == "b"
    assert best_variant(rows, 2.0) == "b"  # AKD equal to the bound is within it
    assert best_variant(ROWS[:1]) is None and most_faithful(ROWS[:1]) is None
    assert [within_bound(v, 1.0) for v in (None, 0.99, 1.0, 1.01)] == [False, True, True, False]
    assert fastest_within(ROWS, 1.0)["variant"] == "mid"
