"""Where a row is timed: PyTorch eager or an ONNX Runtime session, one registry entry each.

A runtime turns (module, input batch, threads, scratch folder) into a zero-argument callable that
runs one inference; a model the runtime cannot take raises :class:`RuntimeUnavailable`, whose
message becomes the row's note instead of stopping the comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from compressbench.registry import Registry

Prepare = Callable[[nn.Module, torch.Tensor, int, Path], Callable[[], object]]

RUNTIMES: Registry[Prepare] = Registry("runtime")


class RuntimeUnavailable(Exception):
    """This model cannot run on the chosen runtime; the message says why (one line)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@RUNTIMES.register("torch")
def torch_runner(module: nn.Module, batch: torch.Tensor, threads: int, scratch: Path) -> Callable[[], object]:
    """Eager PyTorch; the thread count is pinned by the caller for the whole comparison."""

    def run() -> object:
        return module(batch)

    return run


@RUNTIMES.register("onnxruntime")
def onnxruntime_runner(module: nn.Module, batch: torch.Tensor, threads: int, scratch: Path) -> Callable[[], object]:
    """Export to ONNX with the batch's fixed shape, then an ORT session with ``threads`` intra-op
    threads. Export failures (e.g. ops ONNX has no form for) become :class:`RuntimeUnavailable`."""
    from compressbench.compression.onnx import OnnxRunner, export_onnx

    path = scratch / f"model_{len(list(scratch.iterdir()))}.onnx"
    try:
        export_onnx(module, path, batch)
        runner = OnnxRunner(path, threads=threads)
    except Exception as exc:  # any exporter/ORT failure is reported on the row, not raised
        raise RuntimeUnavailable(f"cannot run on onnxruntime: {_first_line(exc)}") from exc
    return lambda: runner(batch)


def prepare(runtime: str, module: nn.Module, batch: torch.Tensor, threads: int, scratch: Path) -> Callable[[], object]:
    return RUNTIMES.get(runtime)(module, batch, threads, scratch)
