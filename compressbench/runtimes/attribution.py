"""Per-op times from each runtime's own profiler, mapped back onto the detector's modules and blocks.

The project's ONNX exporter names every node after the module scope it came from
(``/model/predictor/encoder/down_blocks.0/conv/Conv``: ``model`` is the export wrapper, then the
module path), and both runtimes keep those names: ONNX Runtime's profiler reports node names,
OpenVINO's per-layer counters report the name of the (fused) layer, which is the name of one of the
ONNX nodes it fused (``.../conv/Conv/WithoutBiases``), or a reorder named after the layers it joins.
So a node's scope path gives its module (``down`` -> ``anti_alias`` ...) and its hourglass block.

Nodes without a scope: OpenVINO renames the layer that produces a graph output to the output's name
(``value`` is soft-argmax's last reduction, ``heatmap`` the softmax, ``jacobian`` the pooling), and
reorders of the input start with ``images``; anything else lands in ``other``, which is reported
(never dropped) so the per-op sum still covers every op the runtime timed.

- :class:`OrtOpTimer`: a second ONNX Runtime session with ``enable_profiling`` over the same graph;
  per-call node times come from the profile JSON (``Node`` events ``<node>_kernel_time``, grouped by
  the ``model_run`` event that contains them).
- :class:`OpenVinoOpTimer`: a second compiled model with ``PERF_COUNT``; per call,
  ``request.profiling_info`` (``real_time`` of every executed layer).
- :class:`ExecuTorchOpTimer`: the same ``.pte`` loaded a second time with ETDump on; its events,
  read with ExecuTorch's ``Inspector``, are named by :func:`name_executorch_events` (below).

ExecuTorch's events do not carry the graph's names: a portable operator is ``native_call_<op>``
(wrapped by an ``OPERATOR_CALL`` event whose time includes the dispatch), and inside an XNNPACK
delegate each kernel is named by XNNPACK (``Convolution (NHWC, F32) IGEMM #1``), its events logged
before the ``DELEGATE_CALL`` that ran them. The export keeps each instruction's module path
(``KernelSlot``), so events are named in order: a portable op by the next slot with that op, a
delegate's kernels by walking its subgraph's aten ops (a ``Convolution`` kernel is the next
``convolution`` node; BatchNorm folded into it and ReLU fused as its clamp have no event of their
own). Layout kernels XNNPACK adds (``Transpose`` between NCHW and NHWC, ``Copy``) take a node of their
op within the next three nodes (a ``cat``, a ``view_copy``), else the module of the kernel before
them (the first compute kernel's for those that open a delegate). What a delegate call took beyond
its kernels is its own row in ``other``, so the per-op sum covers every event.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import warnings
from pathlib import Path

from compressbench.errors import CompressbenchError
from compressbench.profiling.layout import DECODER_OPS, ENCODER_OPS, HEAD_LAYERS, MODULE_GROUPS
from compressbench.runtimes.base import Prepared
from compressbench.runtimes.onnx import OnnxRunner
from compressbench.runtimes.openvino_runtime import compile_graph
from compressbench.warnings import quiet_native_stderr

_SCOPE = re.compile(r"(?:^|/|_)model[/.]([A-Za-z_]\w*)")
_DOWN = re.compile(r"model[/.]predictor[/.]encoder[/.]down_blocks\.(\d+)(?:[/.]([A-Za-z_]\w*))?")
_UP = re.compile(r"model[/.]predictor[/.]decoder[/.]up_blocks\.(\d+)(?:[/.]([A-Za-z_]\w*))?")
_CONCAT = re.compile(r"model[/.]predictor[/.]decoder[/.]concats\.(\d+)")
OUTPUT_MODULES = {"value": "soft_argmax", "heatmap": "softmax", "jacobian": "jacobian_pool"}
INPUT_MODULE = "down"  # reorders of the input feed the anti-alias convolution first
OTHER = "other"
# op types (ONNX and OpenVINO spellings) -> seed 000's op names, for ops the scope does not name
OP_NAMES = {
    "Conv": "conv", "Convolution": "conv", "FusedConv": "conv", "QLinearConv": "conv", "GroupConvolution": "conv",
    "BatchNormalization": "batchnorm", "Relu": "relu", "AveragePool": "avgpool", "AvgPool": "avgpool",
    "QLinearAveragePool": "avgpool", "Resize": "interpolation", "Interpolate": "interpolation", "Concat": "concat",
    "QLinearConcat": "concat", "Average Pooling": "avgpool", "Softmax": "softmax", "upsample_nearest2d": "interpolation",
    "upsample_bilinear2d": "interpolation", "Resize Bilinear": "interpolation", "cat": "concat",
}  # fmt: skip
GROUP_OF = {member: group for group, members in MODULE_GROUPS.items() for member in members}


def module_of(node: str) -> str:
    """The top-level detector module a runtime node came from (``other`` when unknown)."""
    if m := _SCOPE.search(node):
        return m[1]
    if node in OUTPUT_MODULES:
        return OUTPUT_MODULES[node]
    if node.startswith("images"):
        return INPUT_MODULE
    return OTHER


def group_of(node: str) -> str:
    """Seed 000's module group (anti_alias, hourglass, heatmap_keypoint, jacobian) or ``other``."""
    return GROUP_OF.get(module_of(node), OTHER)


def layer_of(node: str, op_type: str) -> tuple[str, str]:
    """(block, op) as eager's per-layer rows name them: ``downblock_1``/``conv``, ``upblock_2``/
    ``interpolation``, head layers as (group, op); other ops as (group, op type)."""
    op = OP_NAMES.get(op_type, op_type.lower())
    if m := _DOWN.search(node):
        return f"downblock_{int(m[1]) + 1}", ENCODER_OPS.get(m[2] or "", op)
    if m := _UP.search(node):
        return f"upblock_{int(m[1]) + 1}", DECODER_OPS.get(m[2] or "", op)
    if m := _CONCAT.search(node):
        return f"upblock_{int(m[1]) + 1}", "concat"
    module = module_of(node)
    if module in HEAD_LAYERS and op in ("conv", "softmax"):
        return HEAD_LAYERS[module]
    return group_of(node), op


class OrtOpTimer:
    """Runs the prepared graph in a profiling ONNX Runtime session; :meth:`calls` returns, per
    timed call, ``{node: (op_type, ms)}`` from ONNX Runtime's profile."""

    def __init__(self, prepared: Prepared) -> None:
        if prepared.graph is None:
            raise CompressbenchError("ONNX Runtime attribution needs the prepared ONNX graph")
        self._tmp = tempfile.TemporaryDirectory(prefix="compressbench-ortprof-")
        self.runner = OnnxRunner(prepared.graph, threads=prepared.record.threads,
                                 profile_prefix=Path(self._tmp.name) / "ort")  # fmt: skip
        self.batch = prepared.batch

    def __call__(self) -> None:
        self.runner(self.batch)

    def calls(self, last: int) -> list[dict[str, tuple[str, float]]]:
        path = self.runner.session.end_profiling()
        events = json.loads(Path(path).read_text())
        self._tmp.cleanup()
        runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
        nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
        self.run_ms = [(end - start) / 1000.0 for start, end in runs][-last:]  # ORT's own time of each call
        per_run: list[dict[str, tuple[str, float]]] = [{} for _ in runs]
        starts = [start for start, _ in runs]
        for event in nodes:
            index = _run_index(starts, event["ts"])
            if index is None or event["ts"] > runs[index][1]:
                continue
            name = event["name"][: -len("_kernel_time")]
            op_type = event.get("args", {}).get("op_name", "")
            previous = per_run[index].get(name, (op_type, 0.0))[1]
            per_run[index][name] = (op_type, previous + event["dur"] / 1000.0)
        return per_run[-last:]


def _run_index(starts: list[float], ts: float) -> int | None:
    import bisect

    index = bisect.bisect_right(starts, ts) - 1
    return index if index >= 0 else None


class OpenVinoOpTimer:
    """Runs a PERF_COUNT copy of the prepared OpenVINO model; per call, ``{layer: (type, ms)}``."""

    def __init__(self, prepared: Prepared) -> None:
        record = prepared.record
        program = prepared.program if prepared.program is not None else prepared.graph
        # the hint the timed model was compiled with (an int8 model whose float layers run bf16: runtimes.layers)
        hint = {"INFERENCE_PRECISION_HINT": prepared.compiled.get_property("INFERENCE_PRECISION_HINT")} if prepared.compiled else {}
        self.compiled = compile_graph(program, prepared.batch, record.threads, record.precision_requested, True, hint)
        self.request = self.compiled.create_infer_request()
        self.feed = {0: prepared.batch.detach().float().contiguous().numpy()}
        self.samples: list[dict[str, tuple[str, float]]] = []
        self.wall_ms: list[float] = []  # each call's wall time around infer()

    def __call__(self) -> None:
        start = time.perf_counter_ns()
        self.request.infer(self.feed)
        self.wall_ms.append((time.perf_counter_ns() - start) / 1e6)
        self.samples.append(
            {
                info.node_name: (info.node_type, info.real_time.total_seconds() * 1000.0)
                for info in self.request.profiling_info
                if info.status.name == "EXECUTED"
            }
        )

    def calls(self, last: int) -> list[dict[str, tuple[str, float]]]:
        self.run_ms = self.wall_ms[-last:]
        return self.samples[-last:]


# XNNPACK operator names (the part before " (" or " #") -> the aten ops of the subgraph they run
XNNPACK_KERNELS = {
    "Convolution": {"convolution"}, "Deconvolution": {"convolution"}, "Average Pooling": {"avg_pool2d"},
    "Max Pooling": {"max_pool2d", "max_pool2d_with_indices"}, "Add": {"add"}, "Multiply": {"mul"},
    "Subtract": {"sub"}, "Divide": {"div"}, "Softmax": {"_softmax"}, "Clamp": {"relu", "hardtanh", "clamp"},
    "Sigmoid": {"sigmoid"}, "Fully Connected": {"linear", "addmm", "mm"}, "Batch Matrix Multiply": {"bmm"},
    "Resize Bilinear": {"upsample_bilinear2d"}, "Constant Pad": {"constant_pad_nd"}, "Sum": {"sum"},
    "Mean": {"mean"}, "Square Root": {"sqrt"}, "Maximum": {"maximum"}, "Minimum": {"minimum"},
    "Convert": {"quantize_per_tensor", "dequantize_per_tensor", "quantize_per_channel", "dequantize_per_channel"},
}  # fmt: skip
LAYOUT_KERNELS = {  # kernels XNNPACK may add for layout; matched only close by
    "Transpose": {"permute_copy", "permute"}, "Copy": {"cat", "view_copy", "unsqueeze_copy", "squeeze_copy", "clone"},
    "Static Reshape": {"view_copy", "unsqueeze_copy", "squeeze_copy"}, "Static Transpose": {"permute_copy"},
}  # fmt: skip
LAYOUT_WINDOW = 3


def kernel_family(event: str) -> str:
    """``Convolution`` for ``Convolution (NHWC, F32) IGEMM #1``."""
    return event.split(" (")[0].split(" #")[0].strip()


def _name_delegate(nodes, kernels: list[tuple[str, list[float]]]) -> list[tuple[str, str, list[float]]]:
    """(module, kernel, times) for one delegate call's kernels, in order (see the module docstring)."""
    modules: list[str | None] = []
    at = 0
    for name, _ in kernels:
        family = kernel_family(name)
        if family in LAYOUT_KERNELS:
            ops, end = LAYOUT_KERNELS[family], min(at + LAYOUT_WINDOW, len(nodes))
        else:
            ops, end = XNNPACK_KERNELS.get(family, set()), len(nodes)
        match = next((j for j in range(at, end) if nodes[j][0] in ops), None)
        if match is None:
            modules.append(None)  # named after its neighbours below
            continue
        modules.append(nodes[match][1])
        at = match + 1
    named = [m for m in modules if m is not None]
    out, previous = [], named[0] if named else ""
    for (name, times), module in zip(kernels, modules):
        previous = module if module is not None else previous
        out.append((previous, kernel_family(name), times))
    return out


def name_executorch_events(layout, events: list[tuple[str, list[float]]]) -> list[tuple[str, str, list[float]]]:
    """ETDump's events of one method (``(name, per-call ms)`` in order) as ``(module path, op type,
    per-call ms)`` (op type: the XNNPACK kernel's family, ``Convolution``, or the portable operator,
    ``upsample_nearest2d``); ``layout``: the program's :class:`KernelSlot` s. Events the layout cannot
    name get module ``""`` (``other``)."""
    portable = [slot for slot in layout if slot.op != "delegate"]
    delegates = iter([slot for slot in layout if slot.op == "delegate"])
    out: list[tuple[str, str, list[float]]] = []
    pending: list[tuple[str, list[float]]] = []
    at, i = 0, 0
    while i < len(events):
        name, times = events[i]
        if name.startswith("native_call_"):
            op = name[len("native_call_") :]
            if i + 1 < len(events) and events[i + 1][0] == "OPERATOR_CALL":
                i += 1
                times = events[i][1]  # the wrapping call: the kernel and its dispatch
            match = next((j for j in range(at, len(portable)) if portable[j].op == op), None)
            if match is not None:
                at = match + 1
            out.append((portable[match].module if match is not None else "", op.split(".")[0], times))
        elif name == "DELEGATE_CALL":
            slot = next(delegates, None)
            named = _name_delegate(slot.nodes if slot is not None else (), pending)
            out += named
            spent = [sum(values) for values in zip(*(t for _, _, t in named))] if named else [0.0] * len(times)
            out.append(("", "delegate_call", [max(total - inner, 0.0) for total, inner in zip(times, spent)]))
            pending = []
        elif name == "OPERATOR_CALL":
            out.append(("", "operator_call", times))
        elif "::" in name:  # Method::execute spans the whole call: the end-to-end time, not an op
            pass
        else:
            pending.append((name, times))
        i += 1
    out += [("", kernel_family(name), times) for name, times in pending]
    return out


class ExecuTorchOpTimer:
    """Runs the prepared ``.pte`` a second time with ETDump on; :meth:`calls` returns, per timed call,
    ``{event: (op, ms)}`` with each event named after its module (:func:`name_executorch_events`)."""

    def __init__(self, prepared: Prepared) -> None:
        if prepared.graph is None or prepared.layout is None:
            raise CompressbenchError("ExecuTorch attribution needs the prepared program and its kernel layout")
        from executorch.runtime import Runtime

        with quiet_native_stderr():
            self.pte = prepared.graph  # the program borrows these bytes
            self.program = Runtime.get().load_program(self.pte, enable_etdump=True, debug_buffer_size=0)
            self.method = self.program.load_method("forward")
        self.layout = prepared.layout
        self.feed = [prepared.batch.detach().float().contiguous()]
        self.wall_ms: list[float] = []

    def __call__(self) -> None:
        start = time.perf_counter_ns()
        self.method.execute(self.feed)
        self.wall_ms.append((time.perf_counter_ns() - start) / 1e6)

    def events(self) -> list[tuple[str, list[float]]]:
        """ETDump's events of ``forward`` in order, each with its time in every call so far (ms)."""
        from executorch.devtools import Inspector

        with tempfile.TemporaryDirectory(prefix="compressbench-etdump-") as folder:
            etdump = Path(folder) / "forward.etdp"
            self.program.write_etdump_result_to_file(str(etdump), str(Path(folder) / "debug.bin"))
            with warnings.catch_warnings():  # it warns that no tensors were recorded, which is what we asked
                warnings.simplefilter("ignore")
                inspector = Inspector(etdump_path=str(etdump))
        calls = len(self.wall_ms)
        return [
            (event.name, list(event.perf_data.raw))
            for block in inspector.event_blocks
            if block.name == "Execute"
            for event in block.events
            if event.perf_data is not None and len(event.perf_data.raw) == calls
        ]

    def calls(self, last: int) -> list[dict[str, tuple[str, float]]]:
        named = name_executorch_events(self.layout, self.events())
        self.run_ms = self.wall_ms[-last:]
        per_call: list[dict[str, tuple[str, float]]] = [{} for _ in self.wall_ms]
        for index, (module, op, times) in enumerate(named):
            key = f"{module}/{op}#{index}" if module else f"{op}#{index}"  # one key per event
            for call, ms in zip(per_call, times):
                call[key] = (op, ms)
        return per_call[-last:]


OP_TIMERS = {"onnxruntime": OrtOpTimer, "openvino": OpenVinoOpTimer, "executorch": ExecuTorchOpTimer}


def has_op_timer(prepared: Prepared) -> bool:
    # a deployed .pte keeps no lowered program whose kernel layout would name ExecuTorch's events
    return prepared.record.runtime in OP_TIMERS and (prepared.record.runtime != "executorch" or prepared.layout is not None)


def op_timer(prepared: Prepared):
    """The per-op timer for ``prepared``'s runtime, or raise with the reason there is none."""
    runtime = prepared.record.runtime
    if runtime not in OP_TIMERS:
        raise CompressbenchError(f"per-op attribution is not available for runtime {runtime}")
    return OP_TIMERS[runtime](prepared)


def attribute(calls: list[dict[str, tuple[str, float]]]) -> dict:
    """Per call: the time of each module group, each (block, op) layer and each node."""
    groups: list[dict[str, float]] = []
    layers: list[dict[tuple[str, str], float]] = []
    for call in calls:
        g: dict[str, float] = {}
        lay: dict[tuple[str, str], float] = {}
        for node, (op_type, ms) in call.items():
            g[group_of(node)] = g.get(group_of(node), 0.0) + ms
            key = layer_of(node, op_type)
            lay[key] = lay.get(key, 0.0) + ms
        groups.append(g)
        layers.append(lay)
    return {"groups": groups, "layers": layers, "totals": [sum(ms for _, ms in c.values()) for c in calls]}
