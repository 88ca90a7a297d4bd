"""``fx``: PyTorch FX graph mode post-training quantization for x86 (fbgemm/oneDNN kernels).

``prepare_fx`` with ``get_default_qconfig_mapping("x86")`` (per-channel int8 weights, histogram
observers on uint8 activations) fuses conv+BatchNorm+ReLU, inserts observers, the calibration
inputs run through it, and ``convert_fx`` produces a GraphModule of quantized modules that
quantizes its float input and dequantizes its output. Upstream has deprecated FX mode in favour of
PT2E (now in torchao); it is kept because it is the fastest eager int8 path on this torch.

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

QCONFIG_BACKEND = "x86"


@torch.no_grad()
def quantize_fx(module: nn.Module, calibration: list[torch.Tensor]) -> nn.Module:
    """Float ``module`` -> FX int8 GraphModule calibrated on ``calibration`` batches."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    float_module = copy.deepcopy(module).eval()
    if not any(True for _ in float_module.children()):
        # A bare layer as the traced root is lowered to a functional op whose packed weight is a
        # TorchScript object in the state dict, which weights_only loading refuses; inside a
        # container it becomes a quantized module with plain (quantized) tensors.
        float_module = nn.Sequential(float_module)
    with warnings.catch_warnings():
        # every prepare/convert call prints FX's multi-line deprecation notice; the method's
        # report records the deprecation once instead
        warnings.simplefilter("ignore")
        prepared = prepare_fx(float_module, get_default_qconfig_mapping(QCONFIG_BACKEND), (calibration[0],))
        for batch in calibration:
            prepared(batch)
        converted = convert_fx(prepared).eval()
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
        try:
            return quantize_fx(module, calibration), {}
        except (RuntimeError, AssertionError, TypeError, NotImplementedError) as exc:
            # FX cannot trace or lower some graphs (e.g. FOMM's anti-alias conv, whose weight is a
            # keyword argument); the user can drop that part.
            detail = error_detail(exc)
            raise CompressbenchError(
                f"quantize: backend fx cannot quantize part {part} ({detail}); leave it out of --parts"
            ) from None

    def rebuild_part(self, module, example, structure, part):
        self.select_engine()
        return quantize_fx(module, [example])
