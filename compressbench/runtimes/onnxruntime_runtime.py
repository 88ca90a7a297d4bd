"""``onnxruntime``: the project's ONNX export run by ONNX Runtime's CPU provider.

fp32: the float graph. int8: the whole graph QDQ-quantized (:mod:`.qdq`). bf16: unavailable (the
CPU provider has no bf16 convolution kernels). Idle intra-op workers sleep instead of spinning
(``session.intra_op.allow_spinning=0``, set in :func:`make_session`), so they never take a core
from the runner timed next.

What ran is read back from ONNX Runtime's own profile of one call (at prepare time, untimed) in the
very session that is timed: every executed kernel with its output types (:func:`profiled_precisions`).
The profiler is switched off again before the runner is returned (``end_profiling``).
"""

from __future__ import annotations

import collections
import json
import tempfile
from pathlib import Path

import torch

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import (
    UNKNOWN,
    Prepared,
    RunRecord,
    RuntimeMissing,
    RuntimeUnavailable,
    default_calibration,
    observed_precision,
)
from compressbench.runtimes.graph_counts import onnx_macs
from compressbench.runtimes.layers import float_layers_read_back, layer_scopes, onnx_node_names, plan_of, resolve_scopes
from compressbench.runtimes.onnx import OnnxRunner, export_onnx_bytes
from compressbench.runtimes.qdq import DEFAULT_CALIBRATION_METHOD, float_scopes, int8_notes, quantize_qdq
from compressbench.runtimes.registry import register_runtime

READ_BACK_SOURCE = "onnxruntime profile of one call"
TYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "double": "fp64", "uint8": "int8", "int8": "int8"}
# kernels that convert between precisions or only rearrange memory: they compute in none
MOVES = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast", "Reshape", "Unsqueeze", "Squeeze",
         "Expand", "Transpose", "Flatten", "Identity", "Shape", "Gather", "ReorderInput", "ReorderOutput"}  # fmt: skip
WEIGHTED_KERNELS = ("Conv", "MatMul", "Gemm")  # substrings of the kernels that carry a layer's weights


def ort_version() -> str:
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeMissing("onnxruntime is not installed; run `make install` (it is a core dependency)") from None
    return onnxruntime.__version__


def has_onnxruntime_parts(module) -> bool:
    # OnnxModule (quantize backend=onnxruntime): a serialized graph that ORT already executes
    return any(isinstance(getattr(m, "onnx_bytes", None), torch.Tensor) for m in module.modules())


def profiled_precisions(runner: OnnxRunner, images: torch.Tensor, weighted: list | None = None) -> collections.Counter:
    """(kernel, precision) counts of one call of ``runner`` (a session made with profiling on), read
    from ONNX Runtime's profile: a kernel runs in the type of the tensor it computes, its first output (QLinearConv: uint8; Conv: float; not its first input, which is a
    float scale for QLinearConcat). Kernels that compute integers (shape arithmetic) and
    :data:`MOVES` are left out. ``weighted`` (a list) receives (node name, precision) of every
    convolution and matrix product, for the layers read back (:mod:`.layers`). Ends the session's profiling."""
    runner(images)
    events = json.loads(Path(runner.session.end_profiling()).read_text())
    counts: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        outputs = [next(iter(shape)) for shape in args.get("output_type_shape", []) if shape]
        op = args.get("op_name", "")
        if op in MOVES or not outputs or outputs[0] not in TYPES:
            continue
        counts[(op, TYPES[outputs[0]])] += 1
        if weighted is not None and any(kind in op for kind in WEIGHTED_KERNELS):
            weighted.append((event["name"][: -len("_kernel_time")], TYPES[outputs[0]]))
    return counts


def export_for_runtime(module, batch: torch.Tensor) -> bytes:
    try:
        return export_onnx_bytes(module, batch)
    except CompressbenchError as exc:
        raise RuntimeUnavailable(str(exc)) from None


def int8_graph(module, batch, calibration, method: str | None = None) -> bytes:
    """The QDQ int8 graph of ``module``; the layers its :class:`~.layers.Int8Plan` names stay float."""
    float_bytes = export_for_runtime(module, batch[:1])
    frames = calibration if calibration is not None else default_calibration(batch)
    plan = plan_of(module)
    try:
        names = onnx_node_names(float_bytes) if not plan.empty else []
        float_layers = resolve_scopes(plan.float_layers, names, "int8")
        only = resolve_scopes(plan.only, names, "int8") if plan.only is not None else None
        return quantize_qdq(float_bytes, frames, method or DEFAULT_CALIBRATION_METHOD, keep_float=float_scopes(module),
                            float_layers=float_layers, only=only)  # fmt: skip
    except CompressbenchError as exc:
        raise RuntimeUnavailable(str(exc)) from None


def plan_notes(module, runtime: str, bf16: bool) -> list[str]:
    """What a run record says about the layers ``module``'s plan keeps float on ``runtime``
    (``bf16``: whether that runtime can run them in bf16)."""
    plan = plan_of(module)
    notes = []
    if plan.only is not None:
        notes.append(f"int8 only: {', '.join(plan.only)} (the rest float)")
    if plan.float_layers:
        notes.append(f"kept float: {', '.join(plan.float_layers)}")
    if plan.float_precision == "bf16" and (plan.float_layers or plan.only is not None) and not bf16:
        notes.append(f"float layers asked in bf16 run fp32: {runtime} has no bf16 CPU kernels")
    return notes


@register_runtime
class OnnxRuntimeRuntime:
    name = "onnxruntime"
    summary = "ONNX Runtime CPU (fp32; int8 = whole-graph QDQ, per-channel weights)"

    def version(self) -> str:
        return ort_version()

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        notes = []
        if precision == "bf16":
            raise RuntimeUnavailable("onnxruntime has no bf16 CPU kernels; use openvino or torch for bf16")
        if has_onnxruntime_parts(module):
            if precision != "fp32":
                raise RuntimeUnavailable("its ONNX Runtime parts are already int8; measure it at fp32")
            notes += ["timed as saved: its ONNX Runtime parts plus the rest in PyTorch",
                      "its parts run in sessions of their own: their precision is not read back"]  # fmt: skip
            record = RunRecord("onnxruntime", self.version(), precision, UNKNOWN, threads, [UNKNOWN], notes)

            def run_saved(images: torch.Tensor) -> dict:
                with torch.inference_mode():
                    return module(images)

            return Prepared(run_saved, batch, record)
        if precision == "int8":
            if calibration_method == "nncf":
                raise RuntimeUnavailable("NNCF quantizes OpenVINO models; ONNX Runtime's int8 takes minmax, percentile or entropy")
            graph = int8_graph(module, batch, calibration, calibration_method)
            notes += int8_notes(calibration_method, graph) + plan_notes(module, self.name, bf16=False)
        else:
            graph = export_for_runtime(module, batch[:1])
        weighted: list[tuple[str, str]] = []
        with tempfile.TemporaryDirectory(prefix="compressbench-ort-") as tmp:
            try:
                runner = OnnxRunner(graph, threads=threads, profile_prefix=Path(tmp) / "readback")
            except CompressbenchError as exc:
                raise RuntimeUnavailable(str(exc)) from None
            counts = profiled_precisions(runner, batch, weighted)
        used, fallback = observed_precision(counts, precision, lambda op: "Conv" in op)
        source = READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
        record = RunRecord("onnxruntime", self.version(), precision, used, runner.threads, fallback, notes, source)
        if precision == "int8" and used != UNKNOWN:
            record.float_layers = float_layers_read_back(weighted, layer_scopes(module, onnx_node_names(graph)))
        return Prepared(runner, batch, record, graph=graph)

    artifact_suffix = ".onnx"

    def write_artifact(self, prepared: Prepared, folder: Path) -> list[Path]:
        if prepared.graph is None:
            raise RuntimeUnavailable("its parts run in ONNX Runtime sessions of their own, not one graph; "
                                     "export the float model with --runtime onnxruntime --precision int8")  # fmt: skip
        path = folder / "model.onnx"
        path.write_bytes(prepared.graph)
        return [path]

    def load_artifact(self, path: Path, threads: int, precision: str, outputs: list[str]) -> OnnxRunner:
        return OnnxRunner(path, threads=threads)

    def artifact_signature(self, path: Path) -> tuple[list, list[str]]:
        session = OnnxRunner(path, threads=1).session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise CompressbenchError(f"{path} has {len(inputs)} inputs; a keypoint detector has one (the frames)")
        return list(inputs[0].shape), [o.name for o in session.get_outputs()]

    def artifact_weight_count(self, path: Path) -> int:
        # imported here: the profiling package imports the runtimes, and counting is one home for counts
        from compressbench.profiling.counting import onnx_weight_count

        return onnx_weight_count(Path(path).read_bytes())

    def artifact_mac_count(self, path: Path, input_shape: list[int]) -> int | None:
        """Convolution and matrix-product MACs per frame of the graph (onnx-tool; see runtimes.graph_counts)."""
        return onnx_macs(path, input_shape)

    def artifact_precision(self, path: Path, batch: torch.Tensor, threads: int, precision: str) -> tuple[str, list[str], str]:
        with tempfile.TemporaryDirectory(prefix="compressbench-ort-") as tmp:
            counts = profiled_precisions(OnnxRunner(path, threads=threads, profile_prefix=Path(tmp) / "readback"), batch)
        used, fallback = observed_precision(counts, precision, lambda op: "Conv" in op)
        return used, fallback, READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
