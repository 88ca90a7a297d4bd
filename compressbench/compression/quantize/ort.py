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

import tempfile
from pathlib import Path

import numpy as np
import torch

from compressbench.compression.quantize.backends import QuantBackend, error_detail, register_backend
from compressbench.errors import CompressbenchError
from compressbench.runtimes.onnx import PART_INPUT, OnnxModule, export_onnx_bytes


def _reader(batches: list[torch.Tensor]):
    """A CalibrationDataReader over ``batches`` (onnxruntime is imported lazily: it is slow to load)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{PART_INPUT: b.detach().to(torch.float32).numpy()} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    return Frames()


def quantize_onnx(float_bytes: bytes, calibration: list[torch.Tensor]) -> bytes:
    """QDQ int8 version of a float ONNX graph with input ``input``, calibrated on ``calibration``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="compressbench-ort-") as tmp:
        float_path, pre_path, int8_path = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        float_path.write_bytes(float_bytes)
        # symbolic shape inference stops on the dynamic batch axis; ONNX's own inference suffices
        quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
        quantize_static(
            str(pre_path),
            str(int8_path),
            _reader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return int8_path.read_bytes()


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
