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
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from compressbench.errors import CompressbenchError
from compressbench.profiling.layout import DECODER_OPS, ENCODER_OPS, HEAD_LAYERS, MODULE_GROUPS
from compressbench.runtimes.base import Prepared
from compressbench.runtimes.onnx import OnnxRunner
from compressbench.runtimes.openvino_runtime import compile_graph

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
    "QLinearConcat": "concat",
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
        self.compiled = compile_graph(program, prepared.batch, record.threads, record.precision_requested, True)
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


OP_TIMERS = {"onnxruntime": OrtOpTimer, "openvino": OpenVinoOpTimer}


def has_op_timer(prepared: Prepared) -> bool:
    return prepared.record.runtime in OP_TIMERS


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
