"""``onnxruntime``: ONNX Runtime static QDQ quantization of each part, run in ONNX Runtime.

Each float part is exported to ONNX, pre-processed (ONNX shape inference and graph
optimisation), and ``quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs (uint8
activations from min/max calibration, per-channel int8 weights), which ONNX Runtime's CPU provider
fuses into integer kernels. The quantized graph lives in an :class:`OnnxModule` at the part's
attribute, so the variant saves its serialized graph as a uint8 buffer and reloads without code;
its session uses torch's thread count. Softmax, soft-argmax and jacobian pooling stay in torch:
quantizing the whole detector as one QDQ graph (those included) ran slower than fp32.
"""

from __future__ import annotations

import torch

from compressbench.compression.quantize.backends import QuantBackend, error_detail, register_backend
from compressbench.errors import CompressbenchError
from compressbench.runtimes.onnx import PART_INPUT, OnnxModule, export_onnx_bytes
from compressbench.runtimes.qdq import quantize_qdq


def quantize_onnx(float_bytes: bytes, calibration: list[torch.Tensor]) -> bytes:
    """QDQ int8 version of a part's float ONNX graph (input ``input``), calibrated on ``calibration``
    with min/max ranges (the whole-graph path's quantizer, :func:`compressbench.runtimes.qdq.quantize_qdq`)."""
    return quantize_qdq(float_bytes, torch.cat(calibration), method="minmax", input_name=PART_INPUT)


@register_backend
class OnnxRuntimeBackend(QuantBackend):
    name = "onnxruntime"
    summary = "ONNX Runtime static QDQ (per-channel int8 weights, uint8 activations), run in ONNX Runtime"

    def quantize_part(self, module, calibration, part):
        float_bytes = export_onnx_bytes(module, calibration[0][:1])
        try:
            int8_bytes = quantize_onnx(float_bytes, calibration)
        except Exception as exc:  # onnxruntime.quantization raises plain Exceptions and pybind errors
            detail = error_detail(exc)
            raise CompressbenchError(f"quantize: ONNX Runtime could not quantize part {part} ({detail})") from None
        return OnnxModule(int8_bytes), {"onnx_bytes": len(int8_bytes)}

    def rebuild_part(self, module, example, structure, part):
        return OnnxModule.empty(int(structure["onnx_bytes"]))
