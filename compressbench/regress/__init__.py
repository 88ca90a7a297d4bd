"""Latency regression checks that hold on shared, noisy machines.

Absolute milliseconds from another machine (or another hour on this one) mean little, so every
model is timed *interleaved with a fixed reference workload* (a seeded encoder-decoder
with the teacher's shape of work, the "ruler") in the same process, and the statistic kept is the per-round ratio
``model_ms / ruler_ms``. Baseline and candidate ratios are compared with a one-sided Mann-Whitney U
test and a bootstrap interval on the relative slowdown of medians; a regression needs significance
*and* an interval entirely above the allowed slowdown, and is confirmed by a fresh re-measurement.
Parameters and MACs are deterministic and gated exactly.

Ratios travel within one kind of machine only: a baseline file holds one baseline per machine
fingerprint, a check picks its own machine's, and against another CPU or thread count it says so
first and treats latency as advisory (``--latency strict`` gates it anyway).
"""

from compressbench.regress.measure import Samples, architecture_fingerprint, measure_relative, ruler
from compressbench.regress.settings import CheckSettings, parse_fraction, read_settings
from compressbench.regress.stats import (
    INCONCLUSIVE,
    PASS,
    REGRESSION,
    STATUS_NAMES,
    Decision,
    decide_latency,
    decide_with_remeasure,
    gate_counts,
)

__all__ = [
    "INCONCLUSIVE",
    "PASS",
    "REGRESSION",
    "STATUS_NAMES",
    "CheckSettings",
    "Decision",
    "Samples",
    "architecture_fingerprint",
    "parse_fraction",
    "read_settings",
    "decide_latency",
    "decide_with_remeasure",
    "gate_counts",
    "measure_relative",
    "ruler",
]
