"""Where a row is timed: PyTorch eager or an ONNX Runtime session, one registry entry each.

A runtime turns (module, input batch, threads) into a zero-argument callable that runs one
inference; a model the runtime cannot take raises :class:`RuntimeUnavailable`, whose message
becomes the row's note instead of stopping the comparison.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.registry import Registry

Prepare = Callable[[nn.Module, torch.Tensor, int], Callable[[], object]]

RUNTIMES: Registry[Prepare] = Registry("runtime")


class RuntimeUnavailable(Exception):
    """This model cannot run on the chosen runtime; the message says why (one line)."""


@RUNTIMES.register("torch")
def torch_runner(module: nn.Module, batch: torch.Tensor, threads: int) -> Callable[[], object]:
    """Eager PyTorch; the thread count is pinned by the caller for the whole comparison."""

    def run() -> object:
        return module(batch)

    return run


@RUNTIMES.register("onnxruntime")
def onnxruntime_runner(module: nn.Module, batch: torch.Tensor, threads: int) -> Callable[[], object]:
    """Export to ONNX (in memory), then an ORT CPU session with ``threads`` intra-op threads.
    A model the exporter or ORT refuses (e.g. torch int8 modules) becomes :class:`RuntimeUnavailable`."""
    from compressbench.runtime.onnx import OnnxRunner, export_onnx_bytes

    try:
        runner = OnnxRunner(export_onnx_bytes(module, batch), threads=threads)
    except CompressbenchError as exc:  # export_onnx_bytes / make_session turn every failure into this
        raise RuntimeUnavailable(str(exc)) from exc
    return lambda: runner(batch)


def prepare(runtime: str, module: nn.Module, batch: torch.Tensor, threads: int) -> Callable[[], object]:
    return RUNTIMES.get(runtime)(module, batch, threads)
