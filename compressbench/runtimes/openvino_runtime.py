"""``openvino``: the project's ONNX export read by OpenVINO's CPU plugin.

fp32 and bf16 set ``INFERENCE_PRECISION_HINT`` (f32 must be asked for explicitly: on a CPU with
AMX or AVX-512 bf16 the plugin's default is bf16); int8 is the whole-graph QDQ model of :mod:`.qdq`
(percentile calibration unless another ``calibration_method`` is given; OpenVINO runs the quantized
ops in int8 and, asked for f32, the rest in fp32), or with ``calibration_method="nncf"`` NNCF's
post-training quantization of the OpenVINO model (:mod:`.nncf_int8`).
Latency settings: one stream, ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS`` = threads.
No OpenVINO property stops oneTBB's ``worker_wait`` (its workers busy-wait a few milliseconds after
each call; OpenVINO's thread-scheduling guide says so). Measured as the CPU time the process burns
while the caller sleeps 5 ms after a call (2-core Xeon, busy machine): about 0.22 cores with
``ENABLE_CPU_PINNING=False``, 0.07-0.23 with the default pinning, so the default is kept; the
benchmark's ``--pinning-ab`` repeats the comparison. The larger spinner next to it is torch's own
OpenMP; comparisons wait both out between turns (:func:`compressbench.profiling.timing.wait_until_idle`).

What ran is read back from the compiled model (its runtime graph's ``runtimePrecision`` and
``primitiveType`` per op): the precision the convolutions actually used, the compute ops that ran in
another precision, the convolutions' kernels, and under an ISA cap the kernels that ran above it.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.profiling.machine import kernel_above_cap, this_machine
from compressbench.runtimes.base import (
    UNKNOWN,
    Prepared,
    RunRecord,
    RuntimeMissing,
    RuntimeUnavailable,
    default_calibration,
    first_line,
    observed_precision,
)
from compressbench.runtimes.graph_counts import openvino_macs
from compressbench.runtimes.layers import float_layers_read_back, layer_scopes, onnx_node_names, plan_of, resolve_scopes
from compressbench.runtimes.nncf_int8 import METHOD as NNCF
from compressbench.runtimes.nncf_int8 import model_bytes, nncf_version, quantize_openvino
from compressbench.runtimes.onnxruntime_runtime import export_for_runtime, has_onnxruntime_parts, int8_graph, plan_notes
from compressbench.runtimes.qdq import DEFAULT_CALIBRATION_METHOD, float_scopes, int8_notes
from compressbench.runtimes.registry import register_runtime

HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
# With the weightless heads in float (.qdq), the QDQ graph (percentile) measured closer and faster
# than NNCF on every model (AMD EPYC with AVX-512 VNNI, one interleaved run;
# benchmarks/results/amd-epyc-avx512/runtimes-float-heads.md): teacher 0.219 px at 5.02x against
# 1.034 px at 4.62x, exact 0.212 / 1.045 px, pruned and recovered 0.929 px at 8.13x against 1.371 px
# at 7.26x. NNCF stays one calibration_method away.
DEFAULT_INT8_METHOD = DEFAULT_CALIBRATION_METHOD
WEIGHTED_LAYERS = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
WEIGHT_PATH = {"Convert", "FakeQuantize", "Multiply", "Subtract", "Reshape", "Transpose", "Unsqueeze", "Squeeze"}
READ_BACK_SOURCE = "openvino runtime model (runtimePrecision per executed layer)"
USED = {"f32": "fp32", "bf16": "bf16", "i8": "int8", "u8": "int8", "f16": "fp16"}
WEIGHTED_RUNTIME_LAYERS = {"Convolution", "Deconvolution", "FullyConnected", "MatMul"}
COMPUTE_LAYERS = {"Convolution", "Deconvolution", "FullyConnected", "MatMul", "Interpolate", "Pooling",
                  "Concatenation", "Eltwise", "Reduce", "Softmax", "Subgraph", "MVN"}  # fmt: skip


def openvino_version() -> str:
    try:
        import openvino
    except ImportError:
        raise RuntimeMissing("openvino is not installed; run `make install` (pip install openvino)") from None
    return openvino.__version__.split("-")[0]


def compile_graph(
    graph, batch: torch.Tensor, threads: int, precision: str, perf_count: bool = False, extra: dict | None = None
):
    """A CPU-compiled model of ``graph`` (ONNX bytes, or an OpenVINO model such as NNCF's) for
    ``batch``'s static shape (``extra``: more CPU properties, e.g. the benchmark's pinning A/B)."""
    import openvino as ov

    core = ov.Core()
    try:
        model = read_graph(core, graph, batch) if isinstance(graph, bytes) else graph
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            "PERF_COUNT": perf_count,
            **(extra or {}),
        }
        return core.compile_model(model, "CPU", config)
    except Exception as exc:  # OpenVINO raises RuntimeError/its own types from C++
        raise RuntimeUnavailable(f"OpenVINO cannot compile the graph: {first_line(exc)}") from None


def read_graph(core, graph: bytes, batch: torch.Tensor):
    """The OpenVINO model of ONNX ``graph`` with ``batch``'s static shape."""
    model = core.read_model(graph)
    model.reshape({model.inputs[0].get_any_name(): list(batch.shape)})
    return model


def runtime_precisions(compiled) -> collections.Counter:
    """(layer type, runtime precision) of every op in the compiled graph that reports both; an op
    without them is left out (none reporting: an empty Counter, read as unknown)."""
    counts: collections.Counter = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and "runtimePrecision" in info:
            counts[(str(info["layerType"].astype(str)), str(info["runtimePrecision"].astype(str)))] += 1
    return counts


def weighted_precisions(compiled) -> list[tuple[str, str]]:
    """(layer name, precision used) of every executed convolution and matrix product."""
    out = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and "runtimePrecision" in info and str(info["layerType"].astype(str)) in WEIGHTED_RUNTIME_LAYERS:
            precision = str(info["runtimePrecision"].astype(str))
            out.append((op.get_friendly_name(), USED.get(precision, precision)))
    return out


def kernel_counts(compiled) -> collections.Counter:
    """(layer type, kernel name) of every op of the compiled graph that names its kernel
    (``primitiveType``: "brgconv_avx512_I8", "jit_avx2_I8"); constants and reshapes ("unknown_*") left out."""
    counts: collections.Counter = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and "primitiveType" in info:
            kernel = str(info["primitiveType"].astype(str))
            if not kernel.startswith("unknown"):
                counts[(str(info["layerType"].astype(str)), kernel)] += 1
    return counts


def kernel_report(counts: collections.Counter, cap: str) -> tuple[list[str], list[str]]:
    """(the convolutions' kernels, the kernels above ``cap``), each as "name xN" / "Layer name xN"."""
    convolutions = sorted(f"{kernel} x{n}" for (layer, kernel), n in counts.items() if layer == "Convolution")
    above = sorted(f"{layer} {kernel} x{n}" for (layer, kernel), n in counts.items() if cap and kernel_above_cap(kernel, cap))
    return convolutions, above


def read_kernels(record: RunRecord, compiled) -> None:
    """Fill ``record``'s kernels (and, under this process's ISA cap, those above it) from ``compiled``."""
    record.isa_cap = this_machine().isa_cap
    record.kernels, record.kernels_above_cap = kernel_report(kernel_counts(compiled), record.isa_cap)
    if record.kernels_above_cap:  # why, once: the plugin's own kernels check the CPU, not oneDNN's cap
        record.notes.append("OpenVINO's own kernels ignore ONEDNN_MAX_CPU_ISA in release builds")


def plan_scopes(plan, float_bytes: bytes) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """The node scopes of ``plan``'s float layers and of its ``only`` layers (None: all) in the
    float ONNX graph; a layer without nodes is a RuntimeUnavailable."""
    if plan.empty:
        return (), None
    names = onnx_node_names(float_bytes)
    try:
        only = resolve_scopes(plan.only, names, "int8") if plan.only is not None else None
        return resolve_scopes(plan.float_layers, names, "int8"), only
    except CompressbenchError as exc:
        raise RuntimeUnavailable(str(exc)) from None


def precision_report(compiled, requested: str) -> tuple[str, list[str]]:
    """(precision the convolutions used, compute ops that ran in another precision than requested),
    read from the compiled model's runtime graph."""
    counts = collections.Counter()
    for (layer, precision), n in runtime_precisions(compiled).items():
        if layer in COMPUTE_LAYERS:
            counts[(layer, USED.get(precision, precision))] += n
    return observed_precision(counts, requested, lambda layer: layer == "Convolution")


class OpenVinoRunner:
    """``runner(images)`` -> the detector's output dict, from one infer request of ``compiled``."""

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.names = [o.get_any_name() for o in compiled.outputs]

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        result = self.request.infer({0: images.detach().float().contiguous().numpy()})
        return {name: torch.from_numpy(np.array(result[out])) for name, out in zip(self.names, self.compiled.outputs)}


@register_runtime
class OpenVinoRuntime:
    name = "openvino"
    summary = "OpenVINO CPU plugin (fp32; bf16 = INFERENCE_PRECISION_HINT; int8 = the whole-graph QDQ model, or NNCF)"

    def version(self) -> str:
        return openvino_version()

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        version = self.version()
        if has_onnxruntime_parts(module):
            raise RuntimeUnavailable("its parts already run in ONNX Runtime; OpenVINO needs the float model")
        method = calibration_method or DEFAULT_INT8_METHOD
        notes = []
        graph, program = None, None  # the ONNX graph OpenVINO reads, or NNCF's OpenVINO model
        plan = plan_of(module)
        if precision == "int8" and method == NNCF:
            frames = calibration if calibration is not None else default_calibration(batch)
            float_bytes = export_for_runtime(module, batch[:1])
            float_layers, only = plan_scopes(plan, float_bytes)
            program = quantize_openvino(float_bytes, batch, frames, float_scopes(module) + float_layers, only)
            notes.append(f"int8: NNCF {nncf_version()} post-training quantization of the OpenVINO model")
        elif precision == "int8":
            graph = int8_graph(module, batch, calibration, method)
            notes += int8_notes(method, graph)
        else:
            graph = export_for_runtime(module, batch[:1])
        # the plan's float layers in bf16: one hint for the whole model (see runtimes.layers)
        hint = "bf16" if precision == "int8" and plan.float_precision == "bf16" and not plan.empty else precision
        if precision == "int8":
            notes += plan_notes(module, self.name, bf16=this_machine().has("avx512_bf16", "amx_bf16"))
        compiled = compile_graph(graph if program is None else program, batch, threads, hint)
        used, fallback = precision_report(compiled, precision)
        source = READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))  # as the plugin took it
        record = RunRecord("openvino", version, precision, used, threads, fallback, notes, source)
        read_kernels(record, compiled)
        if precision == "int8" and used != UNKNOWN:
            scopes = layer_scopes(module, onnx_node_names(graph if program is None else float_bytes))
            record.float_layers = float_layers_read_back(weighted_precisions(compiled), scopes)
        size = model_bytes(program) if program is not None else None
        return Prepared(OpenVinoRunner(compiled), batch, record, graph=graph, compiled=compiled, program=program,
                        size_bytes=size)  # fmt: skip

    artifact_suffix = ".xml"

    def write_artifact(self, prepared: Prepared, folder: Path) -> list[Path]:
        """The IR (.xml + .bin) of the model that was compiled: the ONNX graph read and given the
        timed batch's static shape, or NNCF's model; weights kept in fp32."""
        import openvino as ov

        model = prepared.program if prepared.program is not None else read_graph(ov.Core(), prepared.graph, prepared.batch)
        xml = folder / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return [xml, xml.with_suffix(".bin")]

    def load_artifact(self, path: Path, threads: int, precision: str, outputs: list[str]) -> OpenVinoRunner:
        return OpenVinoRunner(compile_graph(self.read_artifact(path), None, threads, precision))

    def read_artifact(self, path: Path):
        import openvino as ov

        try:
            return ov.Core().read_model(str(path))
        except Exception as exc:  # OpenVINO's C++ errors share no Python base
            raise CompressbenchError(f"OpenVINO cannot read {path}: {first_line(exc)}") from None

    def artifact_signature(self, path: Path) -> tuple[list, list[str]]:
        model = self.read_artifact(path)
        if len(model.inputs) != 1:
            raise CompressbenchError(f"{path} has {len(model.inputs)} inputs; a keypoint detector has one (the frames)")
        shape = [d.get_length() if d.is_static else -1 for d in model.inputs[0].get_partial_shape()]
        return shape, [o.get_any_name() for o in model.outputs]

    def artifact_weight_count(self, path: Path) -> int:
        """Weights and biases of an IR's convolutions and matrix products: the constants they take,
        through the conversions a QDQ or compressed IR puts between (one count per constant)."""
        seen: set[int] = set()

        def constant(node) -> int:
            kind = node.get_type_name()
            if kind == "Constant":
                if id(node) in seen:
                    return 0
                seen.add(id(node))
                return math.prod(node.get_output_shape(0))
            return constant(node.input_value(0).get_node()) if kind in WEIGHT_PATH else 0

        total = 0
        for op in self.read_artifact(path).get_ops():
            if op.get_type_name() not in WEIGHTED_LAYERS:
                continue
            total += sum(constant(op.input_value(i).get_node()) for i in range(1, op.get_input_size()))
            users = [t.get_node() for out in op.outputs() for t in out.get_target_inputs()]
            total += sum(constant(u.input_value(1).get_node()) for u in users if u.get_type_name() == "Add")  # the bias
        return total

    def artifact_mac_count(self, path: Path, input_shape: list[int]) -> int:
        """Convolution and matrix-product MACs per frame of the IR, from its static shapes (see runtimes.graph_counts)."""
        return openvino_macs(self.read_artifact(path))

    def artifact_precision(self, path: Path, batch: torch.Tensor, threads: int, precision: str) -> tuple[str, list[str], str]:
        used, fallback = precision_report(compile_graph(self.read_artifact(path), None, threads, precision), precision)
        return used, fallback, READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
