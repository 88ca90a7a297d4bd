"""Measurement: honest timing, in-place per-module attribution, how every quantity is counted, the
machine's fingerprint, health and peaks. It sits below the runtimes and imports none of them;
``profile()`` (a model measured on a runtime) is :func:`compressbench.runtimes.profile.profile`."""

from compressbench.profiling.counting import (
    count_macs,
    count_params,
    example_input,
    macs_fvcore,
    macs_thop,
    peak_memory_mb,
    size_bytes,
    size_mb,
)
from compressbench.profiling.environment import environment
from compressbench.profiling.health import check_health
from compressbench.profiling.machine import MachineFingerprint, this_machine
from compressbench.profiling.peaks import Peaks, machine_peaks
from compressbench.profiling.timing import (
    Agreement,
    LatencyStats,
    measure_alone_and_interleaved,
    measure_interleaved,
    time_alone_round,
    torch_threads,
)

__all__ = [
    "Agreement",
    "LatencyStats",
    "MachineFingerprint",
    "Peaks",
    "check_health",
    "count_macs",
    "machine_peaks",
    "this_machine",
    "time_alone_round",
    "count_params",
    "environment",
    "example_input",
    "macs_fvcore",
    "macs_thop",
    "measure_alone_and_interleaved",
    "measure_interleaved",
    "peak_memory_mb",
    "size_bytes",
    "size_mb",
    "torch_threads",
]
