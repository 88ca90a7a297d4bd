"""``fx``: PyTorch FX graph mode post-training quantization for x86 (fbgemm/oneDNN kernels).

``prepare_fx`` with ``get_default_qconfig_mapping("x86")`` (per-channel int8 weights, histogram
observers on uint8 activations) fuses conv+BatchNorm+ReLU, inserts observers, the calibration
inputs run through it, and ``convert_fx`` produces a GraphModule of quantized modules that
quantizes its float input and dequantizes its output. The stock x86 qconfig keeps activations to
7 bits (``reduce_range``) because the AVX2 int8 dot product can saturate its 16-bit intermediate;
VNNI instructions accumulate in 32 bits, so on a VNNI CPU activations use all 8 bits (against a
partly trained teacher, hourglass only: keypoint error 0.29 px instead of 0.51, same speed). Upstream
has deprecated FX mode in favour of PT2E (now in torchao); it stays because it needs no compiler
and no extra package, and its int8 modules remain visible to per-layer profiling.

Saving: the converted module's state dict holds quantized tensors (per-channel qint8 weights) and
scale/zero-point tensors, which ``torch.load(weights_only=True)`` reads. Rebuilding re-runs
prepare/convert on the fresh float part with one random batch (same graph, arbitrary scales) and
the saved state dict then overwrites every scale, zero point and packed weight.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from compressbench.compression.quantize.backends import QuantBackend, error_detail, register_backend
from compressbench.errors import CompressbenchError
from compressbench.profiling.machine import has_vnni

QCONFIG_BACKEND = "x86"


def full_range_activations() -> bool:
    """True when this CPU has VNNI, so uint8 activations may use their whole range."""
    return has_vnni()


def qconfig_mapping(reduce_range: bool):
    """The x86 mapping (per-channel symmetric int8 weights, histogram-observed uint8 activations),
    with 7-bit activations when ``reduce_range``."""
    from torch.ao.quantization import HistogramObserver, QConfig, get_default_qconfig_mapping

    mapping = get_default_qconfig_mapping(QCONFIG_BACKEND)
    if reduce_range:
        return mapping
    weight = mapping.global_qconfig.weight
    return mapping.set_global(QConfig(activation=HistogramObserver.with_args(reduce_range=False), weight=weight))


def _without_identities(module: nn.Module) -> nn.Module:
    """``module`` traced with every ``nn.Identity`` call bypassed. BatchNorm folding (method
    ``exact``) leaves an Identity between each conv and its ReLU, which would stop FX from fusing
    them: the conv's output would then be quantized before the ReLU, over a range twice as wide."""
    identities = [n for n, m in module.named_modules() if isinstance(m, nn.Identity)]
    if not identities:
        return module
    traced = torch.fx.symbolic_trace(module)
    for node in list(traced.graph.nodes):
        if node.op == "call_module" and node.target in identities:
            node.replace_all_uses_with(node.args[0])
            traced.graph.erase_node(node)
    traced.recompile()
    return traced


def _with_explicit_biases(module: nn.Module) -> nn.Module:
    """Give every bias-free conv and linear layer a zero bias (the same function). FX int8
    conversion otherwise stores ``None`` for those biases inside the packed parameters, which
    leaves non-tensor state that weights_only loading cannot take (students use bias-free convs
    before BatchNorm)."""
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)) and layer.bias is None:
            out_features = layer.out_channels if isinstance(layer, nn.modules.conv._ConvNd) else layer.out_features
            layer.bias = nn.Parameter(torch.zeros(out_features, device=layer.weight.device, dtype=layer.weight.dtype))
    return module


def _concatenate_in_float(converted: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite ``dequantize(cat([a, b]))`` as ``cat([dequantize(a), dequantize(b)])``.

    The hourglass's skip concatenations join a conv output and a pooled encoder feature, which FX
    observes separately, so their scales differ; int8 ``cat`` then requantizes everything to the
    first input's scale (clipping the second input's range) and warns on every forward pass. The
    concatenation's only consumer is a dequantize (the next upsampling runs in float), so joining
    the dequantized inputs gives the same float tensor without that requantization: no warning,
    no clipping, no new state (saved files and rebuilt modules keep the same state dict).
    """
    graph = converted.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.cat:
            continue
        users = list(node.users)
        if not users or not all(u.op == "call_method" and u.target == "dequantize" for u in users):
            continue  # an int8 consumer needs the int8 concatenation
        args, kwargs = node.args, dict(node.kwargs)
        tensors = args[0] if args else kwargs["tensors"]
        with graph.inserting_before(node):
            floats = [graph.call_method("dequantize", (t,)) for t in tensors]
            if args:
                args = (floats, *args[1:])
            else:
                kwargs["tensors"] = floats
            joined = graph.call_function(torch.cat, args, kwargs)
        for user in users:
            user.replace_all_uses_with(joined)
            graph.erase_node(user)
        graph.erase_node(node)
        changed = True
    if changed:
        graph.lint()
        converted.recompile()
    return converted


@torch.no_grad()
def quantize_fx(module: nn.Module, calibration: list[torch.Tensor], reduce_range: bool = True) -> nn.Module:
    """Float ``module`` -> FX int8 GraphModule calibrated on ``calibration`` batches."""
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    float_module = _with_explicit_biases(copy.deepcopy(module).eval())
    if not any(True for _ in float_module.children()):
        # A bare layer as the traced root is lowered to a functional op whose packed weight is a
        # TorchScript object in the state dict, which weights_only loading refuses; inside a
        # container it becomes a quantized module with plain (quantized) tensors.
        float_module = nn.Sequential(float_module)
    float_module = _without_identities(float_module)
    with warnings.catch_warnings():
        # every prepare/convert call prints FX's multi-line deprecation notice; the method's
        # report records the deprecation once instead
        warnings.simplefilter("ignore")
        prepared = prepare_fx(float_module, qconfig_mapping(reduce_range), (calibration[0],))
        for batch in calibration:
            prepared(batch)
        converted = _concatenate_in_float(convert_fx(prepared).eval())
    opaque = [k for k, v in converted.state_dict().items() if not isinstance(v, torch.Tensor)]
    if opaque:
        raise CompressbenchError(f"quantize: fx produced non-tensor state ({opaque[0]}) that cannot be saved safely")
    return converted


@register_backend
class FxBackend(QuantBackend):
    name = "fx"
    summary = "torch.ao FX graph mode, x86 qconfig (per-channel weights), eager int8 kernels"
    engine = "x86"
    note = "FX graph mode quantization is deprecated upstream (planned removal); pt2e is its successor"

    def quantize_part(self, module, calibration, part):
        self.select_engine()
        reduce_range = not full_range_activations()
        try:
            return quantize_fx(module, calibration, reduce_range), {"reduce_range": reduce_range}
        except (RuntimeError, AssertionError, TypeError, NotImplementedError) as exc:
            # FX cannot trace or lower some graphs (e.g. FOMM's anti-alias conv, whose weight is a
            # keyword argument); the user can drop that part.
            detail = error_detail(exc)
            raise CompressbenchError(
                f"quantize: backend fx cannot quantize part {part} ({detail}); leave it out of --parts"
            ) from None

    def rebuild_part(self, module, example, structure, part):
        self.select_engine()
        return quantize_fx(module, [example], bool(structure.get("reduce_range", True)))
