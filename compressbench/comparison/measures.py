"""Static measures of one model: MACs, serialized size, peak memory (parameters: :mod:`.weights`)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Iterator

import torch
from torch import nn

from compressbench.profiling.counting import BYTES_PER_MB, macs_fvcore

MEMORY_EVENT = "[memory]"  # the name torch's profiler gives allocation (+) and free (-) records


def serialized_size_mb(module: nn.Module) -> float:
    """Bytes of ``torch.save(module.state_dict())`` in MB (10^6 bytes): what a file of the weights
    costs on disk, with 8-bit weights at one byte each and the container's small overhead."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell() / BYTES_PER_MB


def count_macs(module: nn.Module, example: torch.Tensor) -> int | None:
    """fvcore's multiply-accumulates for ``example``, or None when fvcore cannot trace the model
    (quantized ops keep their weights in packed params that ``torch.jit.trace`` rejects)."""
    try:
        return macs_fvcore(module, example).total
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return None


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the block: the profiler's C++ side logs start/stop lines there,
    which would otherwise mix with the command's own output."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def peak_memory_mb(run) -> float | None:
    """Peak CPU memory allocated while ``run()`` executes, in MB (10^6 bytes).

    torch's profiler (``profile_memory=True``) records every allocation (+bytes) and free (-bytes)
    of the CPU allocator with a timestamp; the running sum in time order is the memory the call
    holds beyond what existed before it (weights and the input are not included), and its maximum is
    the peak. Memory owned by other allocators (e.g. oneDNN scratch space) is invisible to it.
    Returns None where this torch build does not expose the raw records.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        run()  # once untraced, so one-time allocations (lazy initialisation, caches) are not counted
    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.inference_mode():
            run()
    results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
    if results is None:
        return None
    records = sorted((e.start_ns(), e.nbytes()) for e in results.events() if e.name() == MEMORY_EVENT)
    held = peak = 0
    for _, nbytes in records:
        held += nbytes
        peak = max(peak, held)
    return peak / BYTES_PER_MB
