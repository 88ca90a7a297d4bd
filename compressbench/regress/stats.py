"""Deciding pass / regression / inconclusive from baseline and candidate ratio samples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import mannwhitneyu

from compressbench.regress.measure import Samples
from compressbench.regress.settings import CheckSettings

PASS, REGRESSION, INCONCLUSIVE = 0, 1, 3  # exit codes (2 stays for usage errors)
STATUS_NAMES = {PASS: "pass", REGRESSION: "regression", INCONCLUSIVE: "inconclusive"}


@dataclass
class Decision:
    """The outcome of comparing candidate against baseline samples."""

    status: int
    slowdown: float  # median(candidate ratio) / median(baseline ratio) - 1
    ci_low: float
    ci_high: float
    p_value: float
    reason: str
    remeasured: bool = False
    details: dict = field(default_factory=dict)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["status_name"] = self.status_name
        return out


def slowdown_interval(baseline: list[float], candidate: list[float], settings: CheckSettings) -> tuple[float, float, float]:
    """Point estimate and bootstrap percentile interval of the relative slowdown of medians."""
    base = np.asarray(baseline)
    cand = np.asarray(candidate)
    estimate = float(np.median(cand) / np.median(base) - 1)
    rng = np.random.default_rng(settings.seed)
    b = rng.choice(base, size=(settings.bootstrap, base.size), replace=True)
    c = rng.choice(cand, size=(settings.bootstrap, cand.size), replace=True)
    boot = np.median(c, axis=1) / np.median(b, axis=1) - 1
    tail = (1 - settings.confidence) / 2
    return estimate, float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def decide_latency(baseline: list[float], candidate: list[float], settings: CheckSettings) -> Decision:
    """Pass when the interval lies below the allowed slowdown; regression when the slowdown is
    significant and its whole interval lies above it; inconclusive otherwise."""
    estimate, low, high = slowdown_interval(baseline, candidate, settings)
    p_value = float(mannwhitneyu(candidate, baseline, alternative="greater").pvalue)
    limit = settings.max_slowdown
    if p_value < settings.alpha and low > limit:
        return Decision(REGRESSION, estimate, low, high, p_value, f"slower by {estimate:+.1%} (interval above {limit:.0%})")
    if high < limit:
        return Decision(PASS, estimate, low, high, p_value, f"{estimate:+.1%}, interval below the allowed {limit:.0%}")
    return Decision(INCONCLUSIVE, estimate, low, high, p_value, f"{estimate:+.1%}, interval straddles the allowed {limit:.0%}")


def decide_with_remeasure(baseline: list[float], measure: Callable[[], Samples], settings: CheckSettings) -> tuple[Decision, list[Samples]]:
    """Decide; if the first answer is not a pass, measure again.

    A regression needs the re-measure alone *and* both measurements pooled to say regression: a
    first run that straddled the limit (inconclusive) no longer hides a slowdown that the second run
    confirms, while one slow run followed by a normal one never adds up to a regression. A re-measure
    that passes after an inconclusive first run passes; any other disagreement is inconclusive."""
    first_samples = measure()
    first = decide_latency(baseline, first_samples.ratios, settings)
    if first.status == PASS:
        return first, [first_samples]
    second_samples = measure()
    second = decide_latency(baseline, second_samples.ratios, settings)
    second.remeasured = True
    second.details = {"first": {k: v for k, v in first.to_dict().items() if k != "details"}}
    if second.status == REGRESSION:
        pooled = decide_latency(baseline, first_samples.ratios + second_samples.ratios, settings)
        if pooled.status == REGRESSION:
            pooled.remeasured = True
            pooled.details = second.details
            pooled.reason = f"{pooled.reason}; both runs pooled (first {first.status_name} {first.slowdown:+.1%}, re-measure {second.slowdown:+.1%})"
            return pooled, [first_samples, second_samples]
    elif first.status == second.status:
        return second, [first_samples, second_samples]
    if second.status == PASS and first.status == INCONCLUSIVE:
        return second, [first_samples, second_samples]
    second.status = INCONCLUSIVE
    second.reason = f"first run {first.status_name} ({first.slowdown:+.1%}), re-measure {STATUS_NAMES[decide_latency(baseline, second_samples.ratios, settings).status]} ({second.slowdown:+.1%})"
    return second, [first_samples, second_samples]


def gate_counts(baseline: dict, candidate: dict) -> tuple[int, str]:
    """Exact gate on deterministic figures: any growth in params or MACs is a regression. A figure
    unknown on either side cannot be verified, so the count is inconclusive, never a silent pass."""
    known = [k for k in ("params", "macs") if baseline.get(k) is not None and candidate.get(k) is not None]
    grown = [f"{k} {baseline[k]:,} -> {candidate[k]:,}" for k in known if candidate[k] > baseline[k]]
    if grown:
        return REGRESSION, "grew: " + "; ".join(grown)
    unknown = [f"{k} unknown {'in the baseline' if baseline.get(k) is None else 'here'}"
               for k in ("params", "macs") if k not in known]  # fmt: skip
    if unknown:
        return INCONCLUSIVE, "cannot verify: " + "; ".join(unknown) + " (record the baseline again)"
    shrunk = [k for k in known if candidate[k] < baseline[k]]
    if shrunk:
        return PASS, f"{' and '.join(shrunk)} shrank (refresh the baseline)"
    return PASS, " and ".join(known) + " identical"


def worst(*statuses: int) -> int:
    """Regression beats inconclusive beats pass."""
    for status in (REGRESSION, INCONCLUSIVE):
        if status in statuses:
            return status
    return PASS
