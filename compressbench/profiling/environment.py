"""What a measurement ran on: torch, CPU model, threads, date, and the machine's fingerprint."""

from __future__ import annotations

import datetime as _dt
import os
import platform

import torch

from compressbench.profiling.machine import this_machine


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    return this_machine().cpu_model


def environment(threads: int | None = None) -> dict:
    """The environment record every measurement carries; ``machine`` is the fingerprint
    (:class:`~compressbench.profiling.machine.MachineFingerprint` as a dict, with its ``key`` and ``label``)."""
    threads_used = threads if threads is not None else torch.get_num_threads()
    return {
        "torch": str(torch.__version__),  # TorchVersion is not a plain str (weights_only loads refuse it)
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads_used,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),  # ATen's kernels (ATEN_CPU_CAPABILITY caps them)
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": this_machine(threads_used).to_dict(),
    }
