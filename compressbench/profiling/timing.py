"""Latency statistics and honest timing: warm-up, repeated runs, medians with spread,
interleaved comparisons, and a pinned torch thread count."""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import torch


@dataclass(frozen=True)
class LatencyStats:
    """Latency samples in milliseconds and their summary (median, p10/p90, IQR)."""

    samples_ms: tuple[float, ...] = field(repr=False)

    @classmethod
    def from_samples(cls, samples_ms) -> LatencyStats:
        samples = tuple(float(s) for s in samples_ms)
        if not samples:
            raise ValueError("LatencyStats needs at least one sample")
        return cls(samples)

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile (numpy's default method)."""
        ordered = sorted(self.samples_ms)
        pos = q * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p10(self) -> float:
        return self.quantile(0.10)

    @property
    def p90(self) -> float:
        return self.quantile(0.90)

    @property
    def iqr(self) -> float:
        return self.quantile(0.75) - self.quantile(0.25)

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    def to_dict(self, with_samples: bool = False) -> dict:
        out = {"median": self.median, "p10": self.p10, "p90": self.p90, "iqr": self.iqr, "runs": self.runs}
        if with_samples:
            out["samples"] = list(self.samples_ms)
        return out


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Pin torch's intra-op thread count for the block; yields the count in force."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def time_once_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    on_round: Callable[[int], None] | None = None,
    burst: int = 1,
) -> dict[str, LatencyStats]:
    """Time every callable ``repeats`` times, interleaved (A B C, B C A, ...), after ``warmup``
    rounds. Interleaving spreads a noisy neighbour over all candidates instead of one; rotating
    the order removes a fixed position advantage (e.g. caches warmed by the previous callable).

    ``burst`` > 1: each turn is one untimed call, then ``burst`` timed calls (``repeats * burst``
    samples each). The untimed call pays what the switch costs: caches holding the previous
    callable's weights, and another runtime's worker threads still spinning from its last call.
    Timed calls then see the callable as a deployment runs it (back to back), while drift over the
    run still reaches every callable alike. For callables on different runtimes."""
    if warmup < 0 or repeats <= 0 or burst <= 0:
        raise ValueError("warmup must be >= 0, repeats and burst > 0")
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                fns[name]()
        for i in range(repeats):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                if burst > 1:
                    fns[name]()
                samples[name].extend(time_once_ms(fns[name]) for _ in range(burst))
            if on_round is not None:
                on_round(i)
    return {name: LatencyStats.from_samples(values) for name, values in samples.items()}
