"""Where a row is timed: PyTorch eager or an ONNX Runtime session, one registry entry each.

A runtime turns (module, input batch, threads) into a :class:`Prepared` callable that runs one
inference, with a note when it had to deviate; a model the runtime cannot take raises
:class:`RuntimeUnavailable`, whose message becomes the row's note instead of stopping the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.registry import Registry


@dataclass(frozen=True)
class Prepared:
    """One inference as a zero-argument callable, and what the row should say about how it runs."""

    run: Callable[[], object]
    note: str | None = None

    def __call__(self) -> object:
        return self.run()


Prepare = Callable[[nn.Module, torch.Tensor, int], Prepared]

RUNTIMES: Registry[Prepare] = Registry("runtime")


class RuntimeUnavailable(Exception):
    """This model cannot run on the chosen runtime; the message says why (one line)."""


@RUNTIMES.register("torch")
def torch_runner(module: nn.Module, batch: torch.Tensor, threads: int) -> Prepared:
    """Eager PyTorch; the thread count is pinned by the caller for the whole comparison."""

    def run() -> object:
        return module(batch)

    return Prepared(run)


def _runs_parts_in_onnxruntime(module: nn.Module) -> bool:
    # OnnxModule (quantize backend=onnxruntime): a serialized graph that ORT already executes
    return any(isinstance(getattr(m, "onnx_bytes", None), torch.Tensor) for m in module.modules())


@RUNTIMES.register("onnxruntime")
def onnxruntime_runner(module: nn.Module, batch: torch.Tensor, threads: int) -> Prepared:
    """Export to ONNX (in memory), then an ORT CPU session with ``threads`` intra-op threads.

    A variant whose parts already run in ONNX Runtime cannot be exported again; it is timed as it
    is (its ORT parts, the float rest in PyTorch) with a note. Any other model the exporter or ORT
    refuses (e.g. PyTorch int8 modules) becomes :class:`RuntimeUnavailable`."""
    from compressbench.runtime.onnx import OnnxRunner, export_onnx_bytes

    if _runs_parts_in_onnxruntime(module):
        return Prepared(lambda: module(batch), "timed as saved: its ONNX Runtime parts plus the rest in PyTorch")
    try:
        runner = OnnxRunner(export_onnx_bytes(module, batch), threads=threads)
    except CompressbenchError as exc:  # export_onnx_bytes / make_session turn every failure into this
        raise RuntimeUnavailable(str(exc)) from exc
    return Prepared(lambda: runner(batch))


def prepare(runtime: str, module: nn.Module, batch: torch.Tensor, threads: int) -> Prepared:
    return RUNTIMES.get(runtime)(module, batch, threads)
