"""How each quantity is counted, in one place: parameters, MACs (fvcore and thop), size on disk,
peak memory, and the example input every count runs on.

Parameters stay honest for 8-bit variants: ``module.parameters()`` misses weights that quantization
moves elsewhere, so each module's own parameters are counted and, where a module keeps weights
outside them, those too:

- ``torch.ao`` quantized convolutions/linears (``quantize backend=fx``) hold int8 weights and biases
  in *packed* params: counted through ``_weight_bias()``, their unpacking accessor;
- a part run by ONNX Runtime (an ``OnnxModule``) holds its graph as bytes: counted as the graph
  initializers that feed a Conv/Gemm/MatMul as weight or bias, directly or through a
  DequantizeLinear;
- 8-bit weight buffers (int8/uint8 or quantized dtype, e.g. codebook indices): one per element.

Scales, zero points and codebooks are quantization metadata, not weights; BatchNorm running
statistics are buffers, not parameters. A float model's count equals ``parameters()``'s.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from compressbench.warnings import quiet_native_stderr

BYTES_PER_MB = 1_000_000  # MB means 10^6 bytes throughout compressbench
EIGHT_BIT = (torch.uint8, torch.int8)
WEIGHT_CONSUMERS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
MEMORY_EVENT = "[memory]"  # the name torch's profiler gives allocation (+) and free (-) records


def example_input(input_shape: Sequence[int], seed: int) -> torch.Tensor:
    """A seeded frame batch with pixel values in [0, 1], like FOMM's inputs."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*input_shape, generator=generator)


def onnx_weight_count(graph: bytes) -> int:
    """Elements of the initializers an ONNX graph's Conv/Gemm/MatMul nodes take as weight or bias."""
    import onnx

    model = onnx.load_from_string(graph)
    initializers = {init.name: init for init in model.graph.initializer}
    dequantized_from = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    counted: set[str] = set()
    for node in model.graph.node:
        if node.op_type in WEIGHT_CONSUMERS:
            for name in node.input[1:]:
                source = dequantized_from.get(name, name)
                if source in initializers:
                    counted.add(source)
    return sum(math.prod(initializers[name].dims) for name in counted)


def recorded_counts(module: nn.Module) -> dict | None:
    """``{"params", "macs", "size_bytes"}`` (params and MACs may be None: not known) of a deployed file's module
    (:class:`compressbench.runtimes.deployed.DeployedModel`), which no tracer can count; None for a
    PyTorch module."""
    counts = getattr(module, "recorded_counts", None)
    return counts() if callable(counts) else None


def hidden_weights(module: nn.Module) -> int:
    """Weights ``module`` itself (not its children) keeps outside ``parameters()``."""
    recorded = recorded_counts(module)
    if recorded is not None:
        return recorded["params"] or 0
    unpack = getattr(module, "_weight_bias", None)
    if callable(unpack):
        weight, bias = unpack()
        return weight.numel() + (bias.numel() if bias is not None else 0)
    serialized = getattr(module, "serialized", None)
    if isinstance(getattr(module, "onnx_bytes", None), torch.Tensor) and callable(serialized):
        return onnx_weight_count(serialized())
    return sum(b.numel() for b in module.buffers(recurse=False) if b.dtype in EIGHT_BIT or b.is_quantized)


def count_params(module: nn.Module) -> int:
    """Weights and biases of ``module``, wherever each submodule keeps them (see the module doc)."""
    return sum(sum(p.numel() for p in m.parameters(recurse=False)) + hidden_weights(m) for m in module.modules())


def size_bytes(module: nn.Module) -> int:
    """A model's size, the one definition every record and report uses: the bytes of
    ``torch.save(module.state_dict())``, i.e. what a file of the weights costs on disk (8-bit weights
    at one byte each, packed FX int8 weights included, BatchNorm statistics too, with the container's
    small overhead); for a deployed file (.onnx, .xml + .bin, .pte), the bytes of its files."""
    recorded = recorded_counts(module)
    if recorded is not None:
        return int(recorded["size_bytes"])
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def size_mb(module: nn.Module) -> float:
    """:func:`size_bytes` in MB (10^6 bytes): the ``size_mb`` of comparison rows and profiles."""
    return size_bytes(module) / BYTES_PER_MB


def files_bytes(paths) -> int:
    """Bytes on disk of the files ``paths`` (those that exist): an exported or deployed file's size."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).exists())


def peak_memory_mb(run: Callable[[], object]) -> float | None:
    """Peak CPU memory allocated while ``run()`` executes, in MB (10^6 bytes).

    torch's profiler (``profile_memory=True``) records every allocation (+bytes) and free (-bytes)
    of the CPU allocator; the running sum in time order is the memory the call holds beyond what
    existed before it (weights and input excluded), and its maximum is the peak. Memory of other
    allocators (e.g. oneDNN scratch space) is invisible to it. None where torch hides the records.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        run()  # once untraced, so one-time allocations (lazy initialisation, caches) are not counted
    with quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
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


@dataclass(frozen=True)
class MacCount:
    """Total multiply-accumulates and a per-module breakdown (module name -> MACs)."""

    total: int
    by_module: dict[str, int]
    counter: str


def macs_fvcore(model: nn.Module, example: torch.Tensor) -> MacCount:
    """fvcore's count (one fused multiply-add = one 'flop', so its flops are MACs); a deployed file's
    as its export recorded it."""
    from fvcore.nn import FlopCountAnalysis

    recorded = recorded_counts(model)
    if recorded is not None:
        if recorded["macs"] is None:
            raise ValueError("a deployed file whose graph compressbench cannot count (a bare .pte): its export folder's manifest records them")
        return MacCount(recorded["macs"], {"": recorded["macs"]}, recorded.get("macs_counter") or "fvcore (recorded at export)")

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

    if recorded_counts(model) is not None:
        raise ValueError("thop cannot trace a deployed file")

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


def try_count(counter: Callable[[nn.Module, torch.Tensor], MacCount], model: nn.Module, example: torch.Tensor):
    """``(MacCount, None)``, or ``(None, reason)`` where the counter cannot trace the model: the one
    policy for every MAC count (quantized kernels keep weights in packed params that
    ``torch.jit.trace`` rejects; tracers fail in many ways on such graphs)."""
    try:
        return counter(model, example), None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{counter.__name__} could not count this model ({first[:120]})"


def count_macs(model: nn.Module, example: torch.Tensor) -> int | None:
    """fvcore's total multiply-accumulates for ``example``, or None where fvcore cannot trace it."""
    count, _ = try_count(macs_fvcore, model, example)
    return count.total if count is not None else None


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
