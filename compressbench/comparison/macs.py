"""MACs of a row, including 8-bit rows that fvcore cannot trace.

fvcore traces with ``torch.jit.trace``, which rejects quantized ops (their weights sit in packed
params) and cannot see into graphs run by ONNX Runtime. An int8 variant performs the same
multiply-accumulates as the float model it was quantized from, only in 8 bits, so its MACs are
counted on that float model: the chain's stages before the first int8 method, *rebuilt* from the
variant's base (``rebuild`` recreates shapes; MACs depend on shapes only, never on weights). Where
the base is unknown, an earlier row with exactly that chain prefix is used instead.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from compressbench.comparison.measures import count_macs
from compressbench.compression import METHODS
from compressbench.compression.chain import has_known_base


def stage_key(stages) -> tuple:
    """A hashable identity of a chain prefix: (method, options) per stage."""
    return tuple((s["method"], json.dumps(s.get("options", {}), sort_keys=True, default=str)) for s in stages or [])


def float_prefix(stages: list[dict]) -> list[dict]:
    """The stages before the first one whose method computes in int8. Stages that are not compression
    methods (a student's ``distill`` record) train float weights, so they count as float."""
    for index, stage in enumerate(stages):
        if stage["method"] in METHODS and METHODS.get(stage["method"]).int8:
            return stages[:index]
    return list(stages)


def rebuild_float(base: dict, stages: list[dict]) -> nn.Module | None:
    """The float model's structure (weights arbitrary) from ``base`` and ``stages``, or None."""
    if not has_known_base(base):
        return None
    from compressbench.models.saved import ARCHITECTURES

    builder = ARCHITECTURES.get("chain")  # registered by compressbench.compression.chain
    methods = [s for s in stages if s["method"] in METHODS]  # records such as "distill" change no structure
    args = {"base": base, "stages": [{k: s.get(k) for k in ("method", "options", "structure")} for s in methods]}
    return builder(args)


def row_macs(
    module: nn.Module, variant, example: torch.Tensor, earlier: dict[tuple, tuple[str, int | None]]
) -> tuple[int | None, str | None]:
    """(MACs, note) of one row; ``earlier`` maps chain keys of measured float rows to (name, MACs)."""
    if variant is None or not variant.int8:
        macs = count_macs(module, example)
        return macs, None if macs is not None else "MACs unknown: fvcore cannot trace this model"
    prefix = float_prefix(variant.stages)
    described = ",".join(s["method"] for s in prefix) or "none"
    float_model = rebuild_float(variant.base or {}, prefix)
    if float_model is not None:
        macs = count_macs(float_model.eval(), example)
        return macs, f"MACs of the float model before quantization (stages: {described}), run in int8"
    name, macs = earlier.get(stage_key(prefix), (None, None))
    if macs is None:
        return None, "MACs unknown: the float model before quantization cannot be rebuilt (base unknown)"
    return macs, f"MACs of {name} (the float model before quantization), run in int8"
