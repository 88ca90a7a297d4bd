"""``onnxruntime``: the project's ONNX export run by ONNX Runtime's CPU provider.

fp32: the float graph. int8: the whole graph QDQ-quantized (:mod:`.qdq`). bf16: unavailable (the
CPU provider has no bf16 convolution kernels). Idle intra-op workers sleep instead of spinning
(``session.intra_op.allow_spinning=0``, set in :func:`make_session`), so they never take a core
from the runner timed next.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import torch

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import Prepared, RunRecord, RuntimeMissing, RuntimeUnavailable, default_calibration
from compressbench.runtimes.onnx import OnnxRunner, export_onnx_bytes, make_session
from compressbench.runtimes.qdq import DEFAULT_CALIBRATION_METHOD, float_scopes, int8_notes, quantize_qdq
from compressbench.runtimes.registry import register_runtime

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
# ops that do arithmetic; one of these left in float in a quantized graph ran in fp32
FLOAT_COMPUTE = {"Conv", "FusedConv", "ConvTranspose", "MatMul", "Gemm", "AveragePool", "Resize", "Softmax",
                 "ReduceSum", "Mul", "Add", "Sub", "Div", "Relu", "Concat", "BatchNormalization"}  # fmt: skip


def ort_version() -> str:
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeMissing("onnxruntime is not installed; run `make install` (it is a core dependency)") from None
    return onnxruntime.__version__


def has_onnxruntime_parts(module) -> bool:
    # OnnxModule (quantize backend=onnxruntime): a serialized graph that ORT already executes
    return any(isinstance(getattr(m, "onnx_bytes", None), torch.Tensor) for m in module.modules())


def float_ops_after_optimization(graph: bytes, threads: int) -> list[str]:
    """Op types ONNX Runtime still runs in float in a quantized graph, after its QDQ fusions
    (read from the optimized model it writes), as "Type xN"."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="compressbench-ort-") as tmp:
        path = Path(tmp) / "optimized.onnx"
        make_session(graph, threads, optimized_path=path)
        model = onnx.load(str(path))
    counts = collections.Counter(n.op_type for n in model.graph.node if n.op_type in FLOAT_COMPUTE and not n.domain)
    return [f"{op} x{n}" for op, n in sorted(counts.items())]


def export_for_runtime(module, batch: torch.Tensor) -> bytes:
    try:
        return export_onnx_bytes(module, batch)
    except CompressbenchError as exc:
        raise RuntimeUnavailable(str(exc)) from None


def int8_graph(module, batch, calibration, method: str | None = None) -> bytes:
    float_bytes = export_for_runtime(module, batch[:1])
    frames = calibration if calibration is not None else default_calibration(batch)
    try:
        return quantize_qdq(float_bytes, frames, method or DEFAULT_CALIBRATION_METHOD, keep_float=float_scopes(module))
    except CompressbenchError as exc:
        raise RuntimeUnavailable(str(exc)) from None


@register_runtime
class OnnxRuntimeRuntime:
    name = "onnxruntime"
    summary = "ONNX Runtime CPU (fp32; int8 = whole-graph QDQ, per-channel weights)"

    def version(self) -> str:
        return ort_version()

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        record = RunRecord("onnxruntime", self.version(), precision, precision, threads)
        if precision == "bf16":
            raise RuntimeUnavailable("onnxruntime has no bf16 CPU kernels; use openvino or torch for bf16")
        if has_onnxruntime_parts(module):
            if precision != "fp32":
                raise RuntimeUnavailable("its ONNX Runtime parts are already int8; measure it at fp32")
            record.precision_used = "int8 parts + fp32 rest"
            record.notes.append("timed as saved: its ONNX Runtime parts plus the rest in PyTorch")

            def run_saved(images: torch.Tensor) -> dict:
                with torch.inference_mode():
                    return module(images)

            return Prepared(run_saved, batch, record)
        if precision == "int8":
            if calibration_method == "nncf":
                raise RuntimeUnavailable("NNCF quantizes OpenVINO models; ONNX Runtime's int8 takes minmax, percentile or entropy")
            graph = int8_graph(module, batch, calibration, calibration_method)
            record.fallback_ops = float_ops_after_optimization(graph, threads)
            record.notes += int8_notes(calibration_method)
        else:
            graph = export_for_runtime(module, batch[:1])
        try:
            runner = OnnxRunner(graph, threads=threads)
        except CompressbenchError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        return Prepared(runner, batch, record, graph=graph)
