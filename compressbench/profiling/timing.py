"""Latency statistics and honest timing: warm-up, repeated runs, medians with spread,
interleaved comparisons, and a pinned torch thread count."""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import torch

from compressbench.records import LatencySummary, quantile


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
        return quantile(self.samples_ms, q)

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

    def summary(self) -> LatencySummary:
        """The one latency summary every record holds (median, p10, p90, IQR, runs)."""
        return LatencySummary(self.median, self.p10, self.p90, self.iqr, self.runs)

    def to_dict(self, with_samples: bool = False) -> dict:
        out = self.summary().to_json()
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


# Linux adds another thread's CPU time to the process clock at scheduler ticks (4 ms at 250 Hz),
# so a window shorter than a tick reads a spinning thread as idle now and then.
SETTLE_WINDOW_S, SETTLE_IDLE_CORES, SETTLE_CAP_S = 0.005, 0.05, 0.05


def wait_until_idle(
    window_s: float = SETTLE_WINDOW_S,
    idle_cores: float = SETTLE_IDLE_CORES,
    cap_s: float = SETTLE_CAP_S,
    clocks: tuple[Callable[[], float], Callable[[], float], Callable[[float], None]] = (time.perf_counter, time.process_time, time.sleep),
) -> float:
    """Sleep until this process's threads burn under ``idle_cores`` over a ``window_s`` window (at
    most ``cap_s``); returns the seconds waited. Eager PyTorch's OpenMP workers spin for about
    10 ms after a call unless OMP_WAIT_POLICY=PASSIVE, and that policy slows eager itself by ~28%
    (benchmarks/results/amd-epyc-avx512/omp-policy.md), so turns wait the spin out instead."""
    wall_clock, cpu_clock, sleep = clocks
    start = last_wall = wall_clock()
    last_cpu = cpu_clock()
    for _ in range(max(1, round(cap_s / window_s))):
        sleep(window_s)
        wall, cpu = wall_clock(), cpu_clock()
        if (cpu - last_cpu) / max(wall - last_wall, 1e-9) < idle_cores:
            break
        last_wall, last_cpu = wall, cpu
    return wall_clock() - start


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    on_round: Callable[[int], None] | None = None,
    burst: int = 1,
    timer: Callable[[Callable[[], object]], float] = time_once_ms,
    settle: Callable[[], object] = wait_until_idle,
) -> dict[str, LatencyStats]:
    """Time every callable ``repeats`` times, interleaved (A B C, B C A, ...), after ``warmup``
    rounds. Interleaving spreads a noisy neighbour over all candidates instead of one; rotating
    the order removes a fixed position advantage (e.g. caches warmed by the previous callable).

    ``burst`` > 1: each turn is one untimed call, then ``burst`` timed calls (``repeats * burst``
    samples each). The untimed call pays what the switch costs: caches holding the previous
    callable's weights, and another runtime's worker threads still spinning from its last call.
    Timed calls then see the callable as a deployment runs it (back to back), while drift over the
    run still reaches every callable alike. For callables on different runtimes; so after each
    such turn, ``settle`` waits until no idle thread of the process is still spinning, which would
    slow the next turn (measured: 0.5-2.6% on OpenVINO int8 after eager PyTorch)."""
    if warmup < 0 or repeats <= 0 or burst <= 0:
        raise ValueError("warmup must be >= 0, repeats and burst > 0")
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        _warm_up(fns, warmup)
        for i in range(repeats):
            for name in _rotated(names, i):
                samples[name] += _turn(fns[name], burst, burst > 1, timer)
                if burst > 1:
                    settle()
            if on_round is not None:
                on_round(i)
    return {name: LatencyStats.from_samples(values) for name, values in samples.items()}


def _rotated(names: list[str], shift: int) -> list[str]:
    shift %= len(names)
    return names[shift:] + names[:shift]


def _warm_up(fns: Mapping[str, Callable[[], object]], rounds: int) -> None:
    for _ in range(rounds):
        for fn in fns.values():
            fn()


def _turn(fn: Callable[[], object], timed: int, switch_call: bool, timer) -> list[float]:
    """One runner's turn: an untimed call that pays for the switch (if asked), then ``timed`` calls."""
    if switch_call:
        fn()
    return [timer(fn) for _ in range(timed)]


def time_alone_round(
    fns: Mapping[str, Callable[[], object]],
    block: int,
    shift: int = 0,
    timer: Callable[[Callable[[], object]], float] = time_once_ms,
    settle: Callable[[], object] = wait_until_idle,
) -> dict[str, list[float]]:
    """One round of alone blocks: every callable, in an order rotated by ``shift``, one untimed call
    (which follows another callable) and then ``block`` consecutive timed calls, each block after
    ``settle``."""
    out = {}
    with torch.inference_mode():
        for name in _rotated(list(fns), shift):
            settle()
            out[name] = _turn(fns[name], block, True, timer)
    return out


@dataclass(frozen=True)
class Agreement:
    """One callable timed interleaved with the others and alone, round by round (see
    :func:`measure_alone_and_interleaved`). ``round_ratios``: per round, the interleaved median over
    the alone median; their median is the estimate, since a ratio from one round compares two
    phases seconds apart, where the machine's drift over minutes cannot reach one phase only."""

    interleaved: LatencyStats
    alone: LatencyStats
    round_ratios: tuple[float, ...]

    @property
    def pct(self) -> float:
        """How much slower (+) or faster (-) interleaved than alone, in percent."""
        return 100.0 * (statistics.median(self.round_ratios) - 1.0)

    def interval_pct(self, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
        """Bootstrap percentile interval of :attr:`pct`, resampling rounds."""
        ratios = np.asarray(self.round_ratios)
        rng = np.random.default_rng(seed)
        boot = np.median(rng.choice(ratios, size=(resamples, ratios.size), replace=True), axis=1)
        tail = (1.0 - confidence) / 2.0
        return 100.0 * (float(np.quantile(boot, tail)) - 1.0), 100.0 * (float(np.quantile(boot, 1.0 - tail)) - 1.0)

    def to_dict(self) -> dict:
        low, high = self.interval_pct()
        return {"interleaved_vs_alone_pct": self.pct, "interval_pct": [low, high], "rounds": len(self.round_ratios),
                "interleaved": self.interleaved.to_dict(), "alone": self.alone.to_dict()}  # fmt: skip


def measure_alone_and_interleaved(
    fns: Mapping[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    rounds: int,
    block: int,
    burst: int = 1,
    on_step: Callable[[], None] | None = None,
    timer: Callable[[Callable[[], object]], float] = time_once_ms,
    settle: Callable[[], object] = wait_until_idle,
) -> dict[str, Agreement]:
    """Does any callable slow another? Each callable timed interleaved with the others (as
    :func:`measure_interleaved`: ``repeats`` rotated rounds of turns of ``burst`` timed calls) and
    alone (blocks of ``block`` consecutive timed calls after one untimed call), the two phases
    alternating: the interleaved rounds are cut into ``rounds`` slices, each followed by one round of
    alone blocks (rotated too). With ``rounds == repeats`` every interleaved round has an alone
    round beside it, seconds apart, so a machine that changes speed for minutes reaches both
    phases of a round alike. ``on_step`` is called after every round of either phase
    (``repeats + rounds`` times)."""
    if warmup < 0 or repeats <= 0 or burst <= 0 or block <= 0:
        raise ValueError("warmup must be >= 0, repeats, burst and block > 0")
    if not 1 <= rounds <= repeats:
        raise ValueError(f"rounds must be between 1 and repeats ({repeats}), got {rounds}")
    names = list(fns)
    inter: dict[str, list[list[float]]] = {name: [[] for _ in range(rounds)] for name in names}
    alone: dict[str, list[list[float]]] = {name: [[] for _ in range(rounds)] for name in names}
    slices = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    done = 0
    with torch.inference_mode():
        _warm_up(fns, warmup)
        for r, count in enumerate(slices):
            for i in range(done, done + count):
                for name in _rotated(names, i):
                    inter[name][r] += _turn(fns[name], burst, burst > 1, timer)
                    if burst > 1:
                        settle()
                if on_step is not None:
                    on_step()
            done += count
            for name, samples in time_alone_round(fns, block, r, timer, settle).items():
                alone[name][r] += samples
            if on_step is not None:
                on_step()
    return {
        name: Agreement(
            interleaved=LatencyStats.from_samples(s for part in inter[name] for s in part),
            alone=LatencyStats.from_samples(s for part in alone[name] for s in part),
            round_ratios=tuple(statistics.median(i) / statistics.median(a) for i, a in zip(inter[name], alone[name])),
        )
        for name in names
    }
