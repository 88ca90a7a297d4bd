"""Parameters, weight size, and MACs from fvcore and from thop (both), per module."""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import torch
from torch import nn

BYTES_PER_MB = 1_000_000  # MB means 10^6 bytes throughout compressbench


def count_params(module: nn.Module) -> int:
    """Number of parameters (not buffers)."""
    return sum(p.numel() for p in module.parameters())


def weight_size_mb(module: nn.Module) -> float:
    """Bytes of parameters and buffers, in MB (10^6 bytes)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / BYTES_PER_MB


@dataclass(frozen=True)
class MacCount:
    """Total multiply-accumulates and a per-module breakdown (module name -> MACs)."""

    total: int
    by_module: dict[str, int]
    counter: str


def macs_fvcore(model: nn.Module, example: torch.Tensor) -> MacCount:
    """fvcore's count (one fused multiply-add = one 'flop', so its flops are MACs)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, (example,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = int(analysis.total())
        by_module = {name: int(count) for name, count in analysis.by_module().items()}
    return MacCount(total, by_module, "fvcore")


def macs_thop(model: nn.Module, example: torch.Tensor) -> MacCount:
    """thop's count; thop attaches buffers to modules, so it runs on a copy."""
    import thop

    probe = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, _, tree = thop.profile(probe, inputs=(example,), verbose=False, ret_layer_info=True)
    by_module: dict[str, int] = {"": int(total)}

    def walk(prefix: str, node: dict) -> None:
        for name, (ops, _params, children) in node.items():
            full = f"{prefix}.{name}" if prefix else name
            by_module[full] = int(ops)
            walk(full, children)

    walk("", tree)
    return MacCount(int(total), by_module, "thop")


# Why the two counters differ, per leaf-module type (checked against fvcore 0.1.5 and thop 0.1.1).
_WHY = {
    "BatchNorm2d": "fvcore counts 2 per element (scale and shift), thop 4 (it doubles its normalisation count for affine)",
    "AvgPool2d": "thop counts 1 per output element, fvcore skips pooling",
    "AntiAliasInterpolation2d": "fvcore traces its functional blur convolution, thop only sees nn.Module types it knows",
    "Upsample": "both count nearest up-sampling per output element",
    "ReLU": "thop counts 1 per element in some versions, fvcore skips activations",
}


def explain_mac_difference(model: nn.Module, fv: MacCount, th: MacCount) -> list[str]:
    """Say, per leaf-module type, where fvcore and thop disagree, and why."""
    per_type: dict[str, list[int]] = {}
    for name, module in model.named_modules():
        if name == "" or any(True for _ in module.children()):
            continue
        counts = per_type.setdefault(type(module).__name__, [0, 0])
        counts[0] += fv.by_module.get(name, 0)
        counts[1] += th.by_module.get(name, 0)
    notes = []
    for kind, (f, t) in sorted(per_type.items()):
        if f != t:
            why = _WHY.get(kind, "fvcore traces aten ops, thop hooks known nn.Module types")
            notes.append(f"{kind}: fvcore {f:,} vs thop {t:,} ({why})")
    leaf_fv = sum(v[0] for v in per_type.values())
    if fv.total != leaf_fv:
        notes.append(f"ops outside leaf modules: fvcore {fv.total - leaf_fv:,}, thop 0 (thop sees modules only)")
    return notes
