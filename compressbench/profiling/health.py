"""Measurement health: what makes this machine's timings lie, found before and while timing.

A busy machine does not look busy in the numbers: with another job on 1.3 of 2 cores, the
teacher measured 598 ms (p10/p90 588/604, a tight spread) against 34.6 ms alone, and every small
op had a ~6.5 ms floor (a ReLU on 64x32x32 took 6.8 ms). So the checks measure how busy the
cores we may run on are right now (from /proc/stat over a short window while we sleep, so our own
recent work does not count, as it would in the load average), and look for that floor: in a quick probe (a tiny op timed a few times) and in a profile's smallest
layers. Each check is a pure function of its numbers, so tests feed synthetic ones.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compressbench.profiling.machine import available_cores

# A ReLU on 64x32x32 floats takes tens of microseconds on any current CPU; 1 ms means the thread
# waited for a core.
PROBE_FLOOR_MS = 1.0
PROBE_SHAPE = (1, 64, 32, 32)
# Small layers: the ones whose bytes would stream in well under this at a pessimistic 1 GB/s.
LAYER_FLOOR_MS = 1.0
PESSIMISTIC_BYTES_PER_MS = 1e6  # 1 GB/s
SMALLEST_LAYERS = 5
LOAD_MARGIN = 0.5  # cores of load beyond the free ones before we call it oversubscribed
# /proc/stat sees only other processes, so it can be stricter than the load average: half a core
# busy beside 2 threads on 2 cores slowed the teacher by 68% (health_experiment.md); one thread
# beside 1.3 busy cores of 2 was not slowed.
BUSY_MARGIN = 0.35
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


@dataclass(frozen=True)
class Health:
    """Warnings about the measurement (none: healthy) and the numbers behind them."""

    warnings: tuple[str, ...] = ()
    checks: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.warnings

    def line(self) -> str:
        """One line for the top of the output."""
        if self.healthy:
            return "measurement health: ok"
        return "measurement health: " + "; ".join(self.warnings)

    def merged(self, other: Health) -> Health:
        return Health(self.warnings + tuple(w for w in other.warnings if w not in self.warnings), {**self.checks, **other.checks})

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "warnings": list(self.warnings), "checks": dict(self.checks)}


def load_warning(load1: float, threads: int, cores: int) -> str | None:
    """Oversubscribed when the 1-minute load leaves fewer free cores than the threads we time with
    (the fallback where /proc/stat is not readable: the load average includes our own recent work)."""
    free = cores - load1
    if load1 > LOAD_MARGIN and free + LOAD_MARGIN < threads:
        return f"oversubscribed: load average {load1:.1f} on {cores} cores leaves {max(free, 0):.1f} free for {threads} threads"
    return None


def busy_warning(busy: float, threads: int, cores: int) -> str | None:
    """Oversubscribed when other processes keep so many of our cores busy that fewer than ``threads`` are free."""
    free = cores - busy
    if busy > BUSY_MARGIN and free + BUSY_MARGIN < threads:
        return f"oversubscribed: other processes kept {busy:.1f} of {cores} cores busy, leaving {max(free, 0):.1f} for {threads} threads"
    return None


def cpu_times(stat_text: str) -> dict[int, tuple[int, int]]:
    """Per CPU from /proc/stat text: (busy jiffies, total jiffies); idle and iowait are not busy,
    steal (another VM on our core) is."""
    times = {}
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(v) for v in rest.split()]
        total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        times[int(name[3:])] = (total - idle, total)
    return times


def busy_cores(before: str, after: str, cpus: set[int] | None = None) -> float:
    """How many of ``cpus`` (all by default) were busy between two /proc/stat readings."""
    t0, t1 = cpu_times(before), cpu_times(after)
    busy = 0.0
    for cpu in t1:
        if (cpus is None or cpu in cpus) and cpu in t0:
            total = t1[cpu][1] - t0[cpu][1]
            if total > 0:
                busy += (t1[cpu][0] - t0[cpu][0]) / total
    return busy


def busy_cores_now(window_s: float = 0.25) -> float | None:
    """Cores of our affinity mask that other processes kept busy over ``window_s`` while we slept."""
    try:
        before = Path("/proc/stat").read_text()
        time.sleep(window_s)
        after = Path("/proc/stat").read_text()
    except OSError:
        return None
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    return busy_cores(before, after, cpus) if cpu_times(after) else None


def probe_warning(probe_ms: float, floor_ms: float = PROBE_FLOOR_MS) -> str | None:
    """A tiny op far slower than its size implies: the thread is waiting for a core."""
    if probe_ms > floor_ms:
        shape = "x".join(str(d) for d in PROBE_SHAPE[1:])
        return f"time floor: a ReLU on {shape} took {probe_ms:.2f} ms (expected well under {floor_ms:g} ms)"
    return None


def layer_floor_warning(layers: list[dict], floor_ms: float = LAYER_FLOOR_MS, smallest: int = SMALLEST_LAYERS) -> str | None:
    """The ``smallest`` layers by bytes touched all far above the time their size implies.

    ``layers``: rows with ``bytes`` (input + output + weights) and ``latency_ms`` (median). Each
    small layer's allowance is ``floor_ms`` plus its bytes at a pessimistic 1 GB/s; when even the
    fastest of them exceeds its allowance, every op carries a floor: the machine is oversubscribed."""
    sized = [r for r in layers if r.get("bytes") and r.get("latency_ms") is not None]
    if len(sized) < smallest:
        return None
    small = sorted(sized, key=lambda r: r["bytes"])[:smallest]
    if all(r["latency_ms"] > floor_ms + r["bytes"] / PESSIMISTIC_BYTES_PER_MS for r in small):
        fastest = min(small, key=lambda r: r["latency_ms"])
        return (f"time floor: the {smallest} smallest layers all take over {floor_ms:g} ms "
                f"(fastest {fastest.get('module', '?')}: {fastest['latency_ms']:.2f} ms for {fastest['bytes'] / 1e6:.2f} MB)")  # fmt: skip
    return None


def governor_warning(governor: str | None) -> str | None:
    """CPU frequency scaling that is not pinned to performance moves timings between runs."""
    if governor and governor.strip() not in ("performance",):
        return f"CPU frequency scaling: governor '{governor.strip()}' (timings drift with the clock; 'performance' pins it)"
    return None


def read_governor(root: Path = CPUFREQ) -> str | None:
    try:
        return (root / "scaling_governor").read_text().strip()
    except OSError:
        return None  # not visible (virtual machines, containers): nothing to say


def probe_ms(threads: int | None = None, rounds: int = 15) -> float:
    """Median time of a tiny ReLU: microseconds on an idle core, milliseconds on a busy one."""
    x = torch.rand(PROBE_SHAPE, generator=torch.Generator().manual_seed(0))
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            torch.relu(x)
            samples = []
            for _ in range(rounds):
                start = time.perf_counter_ns()
                torch.relu(x)
                samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(samples)


RULER_SLOWER = 1.5  # the reference workload this much slower than at baseline time: a busier machine


def ruler_warning(baseline_ms: list[float], now_ms: list[float], factor: float = RULER_SLOWER) -> str | None:
    """The gate's reference workload ("ruler") timed now against its times in a baseline of this
    machine: ratios hide a busy machine, the ruler's own milliseconds do not."""
    if not baseline_ms or not now_ms:
        return None
    then, now = statistics.median(baseline_ms), statistics.median(now_ms)
    if then > 0 and now / then > factor:
        return f"the reference workload ran {now / then:.1f}x slower than when the baseline was recorded ({now:.1f} vs {then:.1f} ms median): the machine is busier"
    return None


def assess(threads: int, cores: int, load1: float | None, probe: float | None, governor: str | None, busy: float | None = None) -> Health:
    """Health from given numbers (tests pass synthetic ones). ``busy``: cores other processes keep
    busy now (preferred); ``load1``: the 1-minute load average (used where ``busy`` is unknown)."""
    checks = {"threads": threads, "cores": cores, "busy_cores": busy, "load1": load1, "probe_ms": probe, "governor": governor}
    if busy is not None:
        crowded = busy_warning(busy, threads, cores)
    else:
        crowded = load_warning(load1, threads, cores) if load1 is not None else None
    warnings = [
        crowded,
        probe_warning(probe) if probe is not None else None,
        governor_warning(governor),
    ]
    return Health(tuple(w for w in warnings if w), checks)


def check_health(threads: int | None = None) -> Health:
    """Health of this machine now, for timing with ``threads`` (torch's count by default)."""
    threads = threads if threads is not None else torch.get_num_threads()
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        load1 = None
    busy = busy_cores_now()
    return assess(threads, available_cores(), load1, probe_ms(threads), read_governor(), busy)


def layer_health(layers: list[dict]) -> Health:
    """Health read from a profile's per-layer medians (the floor seen while timing)."""
    warning = layer_floor_warning(layers)
    return Health((warning,) if warning else (), {"layer_floor_checked": len(layers)})
