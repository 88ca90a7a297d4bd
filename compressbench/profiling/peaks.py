"""This machine's measured peaks: what a layer's speed is compared against.

Short calibrated micro-benchmarks (a second or two in all): fp32 GEMM (torch.mm) and a 3x3
convolution, bf16 GEMM and int8 GEMM where the CPU has the instructions for them, and memory
bandwidth (a large tensor copy). Each runs until a small time budget is spent and keeps its best
rate (a peak, not a typical). Results are cached as JSON per machine fingerprint and thread count
in ``$COMPRESSBENCH_CACHE`` (default ``~/.cache/compressbench``), so only the first run pays.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from compressbench.profiling.health import check_health
from compressbench.profiling.machine import MachineFingerprint, this_machine
from compressbench.profiling.timing import torch_threads

FORMAT = "compressbench-peaks/1"
BUDGET_S = 0.25  # per micro-benchmark; best of as many runs as fit
GEMM = 512  # 512^3 MACs = 134 M: long enough to time, cache-resident enough to be compute-bound
COPY_BYTES = 64 * 2**20  # far beyond the last-level cache of the small machines we run on


@dataclass(frozen=True)
class Peaks:
    """Peak rates: GMAC/s per precision, GB/s of memory bandwidth."""

    fp32_gemm_gmacs: float
    fp32_conv_gmacs: float
    bf16_gemm_gmacs: float | None
    int8_gemm_gmacs: float | None
    bandwidth_gbs: float
    threads: int
    machine_key: str
    healthy: bool = True  # False: measured on a busy machine (not cached; lower than the real peaks)

    def compute_peak(self, precision: str) -> float:
        """The peak a layer of ``precision`` is compared against (fp32 where the CPU lacks bf16/int8 units)."""
        best_fp32 = max(self.fp32_gemm_gmacs, self.fp32_conv_gmacs)
        if precision == "bf16" and self.bf16_gemm_gmacs:
            return self.bf16_gemm_gmacs
        if precision == "int8" and self.int8_gemm_gmacs:
            return self.int8_gemm_gmacs
        return best_fp32

    def ridge(self, precision: str) -> float:
        """Arithmetic intensity (MACs per byte) where the memory roof meets the compute roof."""
        return self.compute_peak(precision) / self.bandwidth_gbs

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Peaks:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def best_rate(fn: Callable[[], object], work: float, budget_s: float = BUDGET_S) -> float:
    """``work`` units per second at the fastest of as many runs of ``fn`` as fit in ``budget_s``."""
    fn()  # warm-up: allocation, kernel selection
    best = float("inf")
    deadline = time.perf_counter() + budget_s
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        runs += 1
    return work / best


def _gemm(dtype: torch.dtype) -> Callable[[], object]:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(GEMM, GEMM, generator=generator).to(dtype)
    b = torch.randn(GEMM, GEMM, generator=generator).to(dtype)
    return lambda: torch.mm(a, b)


def _int8_gemm() -> Callable[[], object] | None:
    """torch._int_mm (int8 x int8 -> int32) where this torch build has it on CPU."""
    if not hasattr(torch, "_int_mm"):
        return None
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 127, (GEMM, GEMM), dtype=torch.int8, generator=generator)
    b = torch.randint(-128, 127, (GEMM, GEMM), dtype=torch.int8, generator=generator)
    try:
        torch._int_mm(a, b)
    except (RuntimeError, NotImplementedError):
        return None
    return lambda: torch._int_mm(a, b)


def _conv3x3() -> tuple[Callable[[], object], float]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 64, 64, generator=generator)
    w = torch.randn(64, 64, 3, 3, generator=generator)
    return (lambda: F.conv2d(x, w, padding=1)), 64 * 64 * 9 * 64 * 64


def _copy() -> tuple[Callable[[], object], float]:
    src = torch.ones(COPY_BYTES // 4)
    dst = torch.empty_like(src)
    return (lambda: dst.copy_(src)), 2 * COPY_BYTES  # read and write


def measure_peaks(machine: MachineFingerprint, threads: int, budget_s: float = BUDGET_S) -> Peaks:
    """Run the micro-benchmarks now (about ``5 * budget_s`` seconds)."""
    with torch_threads(threads), torch.inference_mode():
        fp32 = best_rate(_gemm(torch.float32), GEMM**3, budget_s) / 1e9
        conv, conv_macs = _conv3x3()
        conv_rate = best_rate(conv, conv_macs, budget_s) / 1e9
        bf16 = None
        if machine.has("avx512_bf16", "amx_bf16", "bf16"):  # without the instructions bf16 is emulated: no peak
            bf16 = best_rate(_gemm(torch.bfloat16), GEMM**3, budget_s) / 1e9
        int8 = None
        int8_fn = _int8_gemm() if machine.has("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm") else None
        if int8_fn is not None:
            int8 = best_rate(int8_fn, GEMM**3, budget_s) / 1e9
        copy, copy_bytes = _copy()
        bandwidth = best_rate(copy, copy_bytes, budget_s) / 1e9
    return Peaks(fp32, conv_rate, bf16, int8, bandwidth, threads, machine.key)


def cache_dir() -> Path:
    return Path(os.environ.get("COMPRESSBENCH_CACHE") or Path.home() / ".cache" / "compressbench")


def cache_path(machine_key: str, threads: int) -> Path:
    return cache_dir() / f"peaks-{machine_key}-t{threads}.json"


def machine_peaks(threads: int | None = None, *, refresh: bool = False, machine: MachineFingerprint | None = None) -> Peaks:
    """This machine's peaks at ``threads``: from the cache, or measured once and cached. Peaks
    measured while the machine is unhealthy (busy) are returned marked ``healthy=False`` and not
    cached, so one busy moment does not become the machine's peak for good."""
    from dataclasses import replace

    threads = threads if threads is not None else torch.get_num_threads()
    machine = machine if machine is not None else this_machine(threads)
    path = cache_path(machine.key, threads)
    if not refresh and path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") == FORMAT:
                return Peaks.from_dict(doc["peaks"])
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            pass  # a broken cache entry is measured again
    health = check_health(threads)
    peaks = measure_peaks(machine, threads)
    if not health.healthy:
        return replace(peaks, healthy=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "machine": machine.to_dict(), "peaks": peaks.to_dict()}, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache costs a re-measure next time, nothing more
    return peaks


def describe_machine(threads: int | None = None, *, measure: bool = True, refresh: bool = False) -> dict:
    """What timings here are comparable with: this machine's fingerprint, its measurement health
    now, and (``measure``) its peaks, from the cache unless ``refresh``."""
    fingerprint = this_machine(threads)
    health = check_health(fingerprint.threads)
    peaks = machine_peaks(fingerprint.threads, refresh=refresh, machine=fingerprint) if measure else None
    return {"machine": fingerprint.to_dict(), "health": health.to_dict(), "peaks": peaks.to_dict() if peaks else None}
