"""Profiling: honest timing, in-place per-module attribution, parameters and MACs."""

from compressbench.profiling.counting import count_params, macs_fvcore, macs_thop, weight_size_mb
from compressbench.profiling.environment import environment
from compressbench.profiling.health import check_health
from compressbench.profiling.machine import MachineFingerprint, this_machine
from compressbench.profiling.peaks import Peaks, machine_peaks
from compressbench.profiling.profile import example_input, profile
from compressbench.profiling.timing import LatencyStats, measure_interleaved, torch_threads

__all__ = [
    "LatencyStats",
    "MachineFingerprint",
    "Peaks",
    "check_health",
    "machine_peaks",
    "this_machine",
    "count_params",
    "environment",
    "example_input",
    "macs_fvcore",
    "macs_thop",
    "measure_interleaved",
    "profile",
    "torch_threads",
    "weight_size_mb",
]
