"""Efficiency per layer: achieved GMAC/s against this machine's peak, and the roofline.

A layer's arithmetic intensity is its MACs per byte moved (weights, input and output activations,
each at its dtype's size). Below the ridge point (peak GMAC/s / bandwidth GB/s) a layer is
memory-bound: fewer MACs do not make it faster, fewer bytes do. That is the usual answer to
"fewer MACs, no speed-up", and :func:`why_not_faster` says it in a sentence from the numbers.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from compressbench.profiling.module_timer import run_with_forward_hooks
from compressbench.profiling.peaks import Peaks


def tensor_bytes(value) -> int:
    """Bytes of every tensor in ``value`` (tensors, lists/tuples/dicts of them)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    return 0


def weight_bytes(module: nn.Module) -> int:
    """Bytes of a module's stored tensors (state dict: packed int8 weights count at 1 byte each)."""
    return sum(tensor_bytes(t) for t in module.state_dict().values())


def precision_of(module: nn.Module) -> str:
    """fp32 | bf16 | int8, from the module's stored weights."""
    dtypes = {t.dtype for t in module.state_dict().values() if isinstance(t, torch.Tensor)}
    if dtypes & {torch.qint8, torch.quint8, torch.int8, torch.uint8}:
        return "int8"
    if torch.bfloat16 in dtypes:
        return "bf16"
    if torch.float16 in dtypes:
        return "fp16"
    return "fp32"


def layer_kind(module: nn.Module) -> str:
    """A reader's name for the layer: 'depthwise 3x3 conv', '1x1 conv', 'batchnorm', ..."""
    kernel = getattr(module, "kernel_size", None)
    groups = getattr(module, "groups", 1)
    name = type(module).__name__
    if kernel is not None and "Conv" in name:
        size = "x".join(str(k) for k in (kernel if isinstance(kernel, tuple) else (kernel, kernel)))
        in_channels = getattr(module, "in_channels", 0)
        if groups > 1 and groups == in_channels:
            return f"depthwise {size} conv"
        return f"grouped {size} conv" if groups > 1 else f"{size} conv"
    lowered = name.lower()
    if "antialias" in lowered:
        return "anti-alias blur"  # FOMM's Gaussian blur: a depthwise conv in functional form
    for known in ("batchnorm", "relu", "pool", "upsample", "linear", "softmax"):
        if known in lowered:
            return known
    return lowered


def conv_macs(module: nn.Module, output) -> int | None:
    """MACs of a convolution or linear layer from its output (for int8 kernels fvcore cannot trace):
    output elements x input channels per group x kernel area. None for other layers."""
    if not isinstance(output, torch.Tensor):
        return None
    kernel = getattr(module, "kernel_size", None)
    in_channels = getattr(module, "in_channels", None) or getattr(module, "in_features", None)
    if in_channels is None:
        return None
    area = 1
    for k in (kernel if isinstance(kernel, tuple) else (kernel,) if kernel else ()):
        area *= int(k)
    return int(output.numel() * (in_channels // getattr(module, "groups", 1)) * area)


def traffic(model: nn.Module, example: torch.Tensor, names: list[str]) -> dict[str, dict]:
    """Per module in ``names``: bytes of inputs, outputs and weights, precision, kind, and the MACs of
    convolutions and linear layers counted from their shapes (one forward)."""
    out: dict[str, dict] = {}

    def record(name: str):
        def hook(mod, inputs, output):
            if name not in out:
                precision = precision_of(mod)
                if precision == "fp32" and isinstance(output, torch.Tensor) and output.is_quantized:
                    precision = "int8"  # a quantized op without weights (pooling, ReLU on quint8)
                out[name] = {
                    "input_bytes": tensor_bytes(inputs), "output_bytes": tensor_bytes(output),
                    "weight_bytes": weight_bytes(mod), "precision": precision, "kind": layer_kind(mod),
                    "macs": conv_macs(mod, output),
                }  # fmt: skip

        return hook

    run_with_forward_hooks(model, example, record, names)
    return out


def layer_efficiency(macs: int | None, ms: float, bytes_moved: int, precision: str = "fp32", peaks: Peaks | None = None) -> dict:
    """The efficiency figures of one layer; percentages and bound need ``peaks``.

    gmacs_per_s = MACs / time; intensity = MACs / bytes; roof = min(peak, intensity x bandwidth);
    compute-bound when the intensity reaches the ridge point (peak / bandwidth)."""
    macs = macs or 0
    achieved = macs / (ms * 1e6) if ms > 0 else 0.0  # MACs per ms / 1e6 = GMAC/s
    intensity = macs / bytes_moved if bytes_moved else 0.0
    out = {"macs": macs, "bytes": bytes_moved, "gmacs_per_s": achieved, "intensity": intensity, "precision": precision,
           "peak_gmacs": None, "pct_of_peak": None, "roof_gmacs": None, "pct_of_roof": None, "bound": None}  # fmt: skip
    if peaks is not None:
        peak = peaks.compute_peak(precision)
        roof = min(peak, intensity * peaks.bandwidth_gbs)
        out.update(
            peak_gmacs=peak,
            pct_of_peak=100.0 * achieved / peak,
            roof_gmacs=roof,
            pct_of_roof=100.0 * achieved / roof if roof > 0 else None,
            bound="compute" if intensity >= peaks.ridge(precision) else "memory",
        )
    return out


def _plural(kind: str) -> str:
    return kind if kind.endswith("s") or kind in ("batchnorm", "relu", "softmax", "upsample", "pool") else kind + "s"


def group_by_kind(rows: list[dict]) -> list[dict]:
    """Per layer kind: time share, MACs, achieved GMAC/s and % of peak; most time first."""
    total_ms = sum(r["latency_ms"] for r in rows) or 1.0
    groups: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "macs": 0, "peak_ms": 0.0, "layers": 0})
    for r in rows:
        g = groups[r.get("kind", "other")]
        g["ms"] += r["latency_ms"]
        g["macs"] += r.get("macs") or 0
        g["layers"] += 1
        if r.get("peak_gmacs"):
            g["peak_ms"] += (r.get("macs") or 0) / (r["peak_gmacs"] * 1e6)  # the time it would take at peak
    out = []
    for kind, g in groups.items():
        achieved = g["macs"] / (g["ms"] * 1e6) if g["ms"] > 0 else 0.0
        pct = 100.0 * g["peak_ms"] / g["ms"] if g["ms"] > 0 and g["peak_ms"] else None
        out.append({"kind": kind, "layers": g["layers"], "ms": g["ms"], "share_pct": 100.0 * g["ms"] / total_ms,
                    "macs": g["macs"], "gmacs_per_s": achieved, "pct_of_peak": pct})  # fmt: skip
    return sorted(out, key=lambda g: -g["ms"])


def _pct_text(value: float) -> str:
    """41%, 3%, 0.2%: small percentages keep two significant digits instead of rounding to 0%."""
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def why_not_faster(rows: list[dict], low_pct: float = 25.0) -> str:
    """A sentence on where the time goes and how efficiently, from per-layer efficiency rows
    (``kind``, ``latency_ms``, ``macs``, ``peak_gmacs``)."""
    groups = group_by_kind(rows)
    if not groups:
        return ""
    clauses = []
    with_macs = [g for g in groups if g["macs"] and g["pct_of_peak"] is not None]
    slow = [g for g in with_macs if g["pct_of_peak"] < low_pct]
    if slow:
        g = slow[0]
        clauses.append(f"{_plural(g['kind'])} run at {_pct_text(g['pct_of_peak'])} of peak and take {g['share_pct']:.0f}% of the time")
    elif with_macs:
        g = with_macs[0]
        clauses.append(f"{_plural(g['kind'])} take {g['share_pct']:.0f}% of the time at {_pct_text(g['pct_of_peak'])} of peak (compute-bound: fewer MACs is what helps)")
    free = [g for g in groups if not g["macs"]]
    free_share = sum(g["share_pct"] for g in free)
    if free and free_share >= 10:
        kinds = ", ".join(g["kind"] for g in free[:3])
        clauses.append(f"layers without MACs ({kinds}) take {free_share:.0f}%")
    memory = sum(r["latency_ms"] for r in rows if r.get("bound") == "memory" and r.get("macs"))
    total = sum(r["latency_ms"] for r in rows) or 1.0
    if memory / total >= 0.2:
        clauses.append(f"memory-bound layers with MACs take {100 * memory / total:.0f}% (fewer bytes, not fewer MACs, would help them)")
    return "; ".join(clauses[:3]) + "." if clauses else ""
