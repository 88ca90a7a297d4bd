"""Whole-graph int8: ONNX QDQ static quantization of an exported detector, for any ONNX runtime.

``onnxruntime.quantization.quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs around
every quantizable op of the *whole* detector (per-channel int8 weights, uint8 activations), with
ranges calibrated on calibration frames. ONNX Runtime fuses the pairs into integer kernels;
OpenVINO reads the same QDQ file and runs its int8 kernels. The calibration method decides the
activation ranges: ``minmax`` (the observed extremes), ``percentile`` (clips the rarest 0.01%),
``entropy`` (the range that keeps the histogram's KL divergence smallest).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import first_line
from compressbench.runtimes.onnx import INPUT_NAME

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Chosen by keypoint error against fp32 on 16 held-out synthetic frames, calibrated on 32 training-split
# frames, ONNX Runtime: the default-weights teacher at 128 px: percentile 1.43 px, minmax 1.64,
# entropy 1.64 (entropy gave exactly minmax's ranges there); the reduced detector with random weights
# at 64 px: minmax 0.36, percentile 0.44. Trained weights decide. benchmarks/runtimes_benchmark.py
# --calibration compares them on the full teacher.
DEFAULT_CALIBRATION_METHOD = "percentile"
CALIBRATION_CHUNK = 8


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIBRATION_METHODS:
        raise CompressbenchError(f"unknown calibration method {name!r}; known: {', '.join(CALIBRATION_METHODS)}")
    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]  # fmt: skip


def _reader(frames: torch.Tensor, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            chunks = torch.split(frames.detach().float(), CALIBRATION_CHUNK)
            self.feeds = iter([{input_name: c.contiguous().numpy()} for c in chunks])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    return Frames()


def quantize_qdq(
    float_bytes: bytes,
    calibration: torch.Tensor,
    method: str = DEFAULT_CALIBRATION_METHOD,
    input_name: str = INPUT_NAME,
) -> bytes:
    """The QDQ int8 version of a float ONNX graph, calibrated on ``calibration`` (N, 3, S, S)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate_method = _method(method)
    # ONNX Runtime's shape inference writes a temporary model into the current folder when it gives
    # up (sym_shape_infer_temp.onnx); working inside the temporary folder keeps the user's folder clean
    with tempfile.TemporaryDirectory(prefix="compressbench-qdq-") as tmp, contextlib.chdir(tmp):
        float_path, pre_path, int8_path = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        float_path.write_bytes(float_bytes)
        try:
            # symbolic shape inference stops on the dynamic batch axis; ONNX's own inference suffices
            quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
            with contextlib.redirect_stdout(io.StringIO()):  # its calibrators print progress on stdout
                quantize_static(
                    str(pre_path),
                    str(int8_path),
                    _reader(calibration, input_name),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=calibrate_method,
                    extra_options={"CalibTensorRangeSymmetric": False},
                )
        except Exception as exc:  # onnxruntime.quantization raises plain Exceptions and pybind errors
            raise CompressbenchError(f"QDQ int8 quantization failed: {first_line(exc)}") from None
        return int8_path.read_bytes()
