"""Profiling: honest timing, in-place per-module attribution, and how every quantity is counted."""

from compressbench.profiling.counting import (
    count_macs,
    count_params,
    example_input,
    macs_fvcore,
    macs_thop,
    peak_memory_mb,
    size_mb,
)
from compressbench.profiling.environment import environment
from compressbench.profiling.profile import profile
from compressbench.profiling.timing import LatencyStats, measure_interleaved, torch_threads

__all__ = [
    "LatencyStats",
    "count_macs",
    "count_params",
    "environment",
    "example_input",
    "macs_fvcore",
    "macs_thop",
    "measure_interleaved",
    "peak_memory_mb",
    "profile",
    "size_mb",
    "torch_threads",
]
