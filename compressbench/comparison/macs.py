"""MACs of a row, including 8-bit rows that fvcore cannot trace.

fvcore traces with ``torch.jit.trace``, which rejects quantized ops (their weights sit in packed
params) and cannot see into graphs run by ONNX Runtime. An int8 variant performs the same
multiply-accumulates as the float model it was quantized from, only in 8 bits, so its MACs are
counted on that float model: the variant's provenance up to its first int8 stage, *rebuilt*
(shapes only; MACs never depend on weights). Where the base is unknown, an earlier row with exactly
that chain prefix is used instead.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from compressbench.profiling.counting import count_macs


def stage_key(stages) -> tuple:
    """A hashable identity of a chain prefix: (method, options) per stage."""
    return tuple((s.method, json.dumps(s.options, sort_keys=True, default=str)) for s in stages or ())


def variant_macs(module: nn.Module, provenance, example: torch.Tensor) -> tuple[int | None, str | None]:
    """(MACs, note) of ``module`` whose :class:`~compressbench.provenance.Provenance` is
    ``provenance`` (None: a float module counted as it is). An int8 module is counted on its float
    prefix, rebuilt; (None, why) where that cannot be rebuilt."""
    if provenance is None or not provenance.int8:
        macs = count_macs(module, example)
        return macs, None if macs is not None else "MACs unknown: fvcore cannot trace this model"
    float_provenance = provenance.float_prefix()
    if not float_provenance.rebuildable:
        return None, "MACs unknown: the float model before quantization cannot be rebuilt (base unknown)"
    macs = count_macs(float_provenance.build(), example)
    return macs, f"MACs of the float model before quantization (stages: {float_provenance.method}), run in int8"


def row_macs(
    module: nn.Module, variant, example: torch.Tensor, earlier: dict[tuple, tuple[str, int | None]]
) -> tuple[int | None, str | None]:
    """(MACs, note) of one row; ``earlier`` maps chain keys of measured float rows to (name, MACs),
    which stand in where an int8 row's float model cannot be rebuilt."""
    macs, note = variant_macs(module, variant.provenance if variant is not None else None, example)
    if macs is not None or variant is None or not variant.int8:
        return macs, note
    float_provenance = variant.provenance.float_prefix()
    name, macs = earlier.get(stage_key(float_provenance.stages), (None, None))
    if macs is None:
        return None, note
    return macs, f"MACs of {name} (the float model before quantization), run in int8"
