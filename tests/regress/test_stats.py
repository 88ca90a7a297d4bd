"""The regression decision on samples with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compressbench.regress import (
    INCONCLUSIVE,
    PASS,
    REGRESSION,
    CheckSettings,
    Samples,
    architecture_fingerprint,
    decide_latency,
    decide_with_remeasure,
    gate_counts,
)

SETTINGS = CheckSettings(max_slowdown=0.10, alpha=0.01, bootstrap=500, seed=0)


def noisy(center: float, n: int = 30, spread: float = 0.01, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(center * (1 + spread * rng.standard_normal(n)))


def test_same_distribution_passes():
    decision = decide_latency(noisy(5.0, seed=1), noisy(5.0, seed=2), SETTINGS)
    assert decision.status == PASS
    assert abs(decision.slowdown) < 0.02
    assert decision.ci_low < 0 < decision.ci_high < 0.10


def test_twenty_percent_slower_is_a_regression():
    decision = decide_latency(noisy(5.0, seed=1), noisy(6.0, seed=2), SETTINGS)
    assert decision.status == REGRESSION
    assert decision.slowdown == pytest.approx(0.20, abs=0.02)
    assert decision.ci_low > 0.10 and decision.p_value < 0.01


def test_slowdown_at_the_limit_is_inconclusive():
    decision = decide_latency(noisy(5.0, seed=1, spread=0.03), noisy(5.5, seed=2, spread=0.03), SETTINGS)
    assert decision.status == INCONCLUSIVE
    assert decision.ci_low < 0.10 < decision.ci_high


def test_slowdown_estimate_is_ratio_of_medians():
    decision = decide_latency([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], SETTINGS)
    assert decision.slowdown == pytest.approx(3.0 / 2.0 - 1)


def test_regression_is_confirmed_by_remeasuring():
    calls = []

    def measure():
        calls.append(1)
        return Samples(noisy(6.0, seed=len(calls) + 5), [1.0] * 30)

    decision, samples = decide_with_remeasure(noisy(5.0, seed=1), measure, SETTINGS)
    assert decision.status == REGRESSION and decision.remeasured and len(calls) == 2 and len(samples) == 2


def test_one_slow_run_then_a_normal_one_is_not_a_regression():
    runs = iter([noisy(6.0, seed=3), noisy(5.0, seed=4)])

    def measure():
        return Samples(next(runs), [1.0] * 30)

    decision, _ = decide_with_remeasure(noisy(5.0, seed=1), measure, SETTINGS)
    assert decision.status == INCONCLUSIVE
    assert "first run regression" in decision.reason


def test_pass_needs_no_remeasure():
    calls = []

    def measure():
        calls.append(1)
        return Samples(noisy(5.0, seed=9), [1.0] * 30)

    decision, _ = decide_with_remeasure(noisy(5.0, seed=1), measure, SETTINGS)
    assert decision.status == PASS and len(calls) == 1 and not decision.remeasured


def test_samples_ratios_are_per_round():
    samples = Samples([10.0, 12.0], [5.0, 4.0])
    assert samples.ratios == [2.0, 3.0]
    assert Samples.from_dict(samples.to_dict()).ratios == [2.0, 3.0]


def test_counts_are_gated_exactly():
    base = {"params": 100, "macs": 1000}
    assert gate_counts(base, {"params": 100, "macs": 1000})[0] == PASS
    status, reason = gate_counts(base, {"params": 101, "macs": 1000})
    assert status == REGRESSION and "params 100 -> 101" in reason
    assert gate_counts(base, {"params": 90, "macs": 900}) == (PASS, "params and macs shrank (refresh the baseline)")


def test_fingerprint_ignores_widths_but_not_structure():
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    b = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU())
    c = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sigmoid())
    assert architecture_fingerprint(a) == architecture_fingerprint(b)
    assert architecture_fingerprint(a) != architecture_fingerprint(c)
    assert torch.is_tensor(next(a.parameters()))


def test_a_straddling_first_run_confirmed_by_the_remeasure_is_a_regression():
    runs = iter([noisy(5.55, seed=3, spread=0.03), noisy(6.0, seed=4)])

    def measure():
        return Samples(next(runs), [1.0] * 30)

    baseline = noisy(5.0, seed=1)
    assert decide_latency(baseline, noisy(5.55, seed=3, spread=0.03), SETTINGS).status == INCONCLUSIVE
    decision, samples = decide_with_remeasure(baseline, measure, SETTINGS)
    assert decision.status == REGRESSION and decision.remeasured and len(samples) == 2
    assert "both runs pooled (first inconclusive" in decision.reason
    pooled = decide_latency(baseline, samples[0].ratios + samples[1].ratios, SETTINGS)
    assert decision.slowdown == pooled.slowdown and decision.ci_low == pooled.ci_low > 0.10


def test_a_straddling_first_run_then_a_pass_passes():
    runs = iter([noisy(5.55, seed=3, spread=0.03), noisy(5.0, seed=4)])

    def measure():
        return Samples(next(runs), [1.0] * 30)

    decision, _ = decide_with_remeasure(noisy(5.0, seed=1), measure, SETTINGS)
    assert decision.status == PASS and decision.remeasured
