"""Which layers of a detector run in int8 and which stay float: the plan a module carries into the
int8 runtimes (ONNX Runtime's and OpenVINO's QDQ graph, NNCF), and the read-back of what ran.

A *layer* is a submodule that owns a weight tensor of its own (a convolution, a linear layer, the
anti-alias blur kernel): :func:`weighted_layers`. An :class:`Int8Plan` names modules by their
``named_modules`` name (any module, so ``predictor.decoder`` keeps a whole decoder float):

- ``float_layers``: their ONNX nodes stay float, and they read their inputs unquantized
  (:func:`release_float_nodes`);
- ``only``: when given, only these modules' nodes are quantized and everything else stays float
  (the sensitivity analysis' "only this layer int8");
- ``float_precision``: ``bf16`` lets OpenVINO run the float layers in bf16 (its CPU plugin takes one
  ``INFERENCE_PRECISION_HINT`` per compiled model: with ``bf16`` every float convolution and
  interpolation runs bf16, the int8 ones stay int8, and the plugin itself keeps the graph's tail
  after the last convolution, the softmax and soft-argmax heads, in f32; per-node rt_info such as
  ``disable_fp16_compression`` does not change that in OpenVINO 2026.4, measured on a CPU with
  AVX-512 bf16).

The plan is an attribute of the root module (:data:`PLAN_ATTRIBUTE`); the ``mixed`` compression
method sets it, so a saved variant replays it. Module names become ONNX node scopes by matching the
export's node names (:func:`resolve_scope`): the exporter joins a module list and its index with a
dot (``/model/predictor/encoder/down_blocks.0/conv/Conv``), other levels with a slash.

Why a float layer must not read a dequantized input: ONNX Runtime's ``WeightBiasQuantization``
graph transformer (on by default since 1.20) quantizes the float weights of any Conv or Gemm whose
input comes from a DequantizeLinear (per-tensor int8), so a convolution merely left out of the QDQ
quantization still ran as QLinearConv (read back from its profile on the reduced detector).
Reading the unquantized tensor keeps it float in every runtime and in the exported file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from compressbench.errors import CompressbenchError

PLAN_ATTRIBUTE = "int8_plan"
FLOAT_PRECISIONS = ("fp32", "bf16")
ONNX_ROOT = "/model/"  # the export wrapper's scope (runtimes.onnx._TupleOutputs)
WEIGHTED_ONNX_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm"}
FLOAT_TYPES = {"fp32", "bf16", "fp16"}


@dataclass(frozen=True)
class Int8Plan:
    """What an int8 runtime keeps float; see the module docstring."""

    float_layers: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    float_precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.float_precision not in FLOAT_PRECISIONS:
            raise CompressbenchError(
                f"unknown float precision {self.float_precision!r}; choose one of: {', '.join(FLOAT_PRECISIONS)}"
            )

    @property
    def empty(self) -> bool:
        return not self.float_layers and self.only is None


def plan_of(module: nn.Module) -> Int8Plan:
    """The plan ``module`` carries (an empty one when it carries none)."""
    plan = getattr(module, PLAN_ATTRIBUTE, None)
    return plan if isinstance(plan, Int8Plan) else Int8Plan()


def set_plan(module: nn.Module, plan: Int8Plan) -> nn.Module:
    """Attach ``plan`` to ``module`` (in place) after checking every name it uses; returns ``module``."""
    check_layer_names(module, plan.float_layers + (plan.only or ()))
    setattr(module, PLAN_ATTRIBUTE, plan)  # a plain attribute (not a submodule or buffer): copies keep it
    return module


def weighted_layers(module: nn.Module) -> list[str]:
    """Names of the submodules that own a weight of two or more dimensions themselves: the layers
    int8 quantizes (convolutions, linear layers, the anti-alias kernel), in definition order."""
    names = []
    for name, child in module.named_modules():
        if not name:
            continue
        tensors = list(child.named_parameters(recurse=False)) + list(child.named_buffers(recurse=False))
        if any(key == "weight" and tensor is not None and tensor.dim() >= 2 for key, tensor in tensors):
            names.append(name)
    return names


def check_layer_names(module: nn.Module, names: Iterable[str]) -> None:
    """Every name must be a submodule of ``module``; an unknown one is one error listing the layers."""
    modules = dict(module.named_modules())
    for name in names:
        if not name or name not in modules:
            known = ", ".join(weighted_layers(module)) or "(none)"
            raise CompressbenchError(f"unknown layer {name!r}; known layers: {known}")


def parse_layer_list(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"kp, jacobian"`` -> ``("kp", "jacobian")`` (blanks dropped, order kept, repeats removed)."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in (str(i).strip() for i in items):
        if item and item not in out:
            out.append(item)
    return tuple(out)


# -- module names -> ONNX node scopes ---------------------------------------------------------------


def _scope_pattern(name: str) -> re.Pattern:
    parts = [re.escape(part) for part in name.split(".")]
    return re.compile(re.escape(ONNX_ROOT) + "[./]".join(parts) + "/")


def resolve_scope(name: str, node_names: Iterable[str]) -> str | None:
    """The node-name prefix the export gave module ``name`` (``predictor.encoder.down_blocks.0.conv``
    -> ``/model/predictor/encoder/down_blocks.0/conv/``), read from ``node_names``; None when no
    node is under it. Where two spellings match, the one more nodes carry."""
    pattern = _scope_pattern(name)
    found: dict[str, int] = defaultdict(int)
    for node in node_names:
        if m := pattern.match(node):
            found[m.group(0)] += 1
    return max(found, key=found.get) if found else None


def resolve_scopes(names: Iterable[str], node_names: Iterable[str], what: str) -> tuple[str, ...]:
    """:func:`resolve_scope` of every name; a name no node is under is an error (``what`` says where)."""
    node_names = list(node_names)
    scopes = []
    for name in names:
        scope = resolve_scope(name, node_names)
        if scope is None:
            raise CompressbenchError(f"{what}: layer {name!r} has no node in the exported graph (is it called in forward?)")
        scopes.append(scope)
    return tuple(scopes)


def layer_scopes(module: nn.Module, node_names: Iterable[str]) -> dict[str, str]:
    """Node scope -> layer name, for reading back which layer a runtime's node belongs to: every
    weighted layer's own scope (in graph order), then the scope of every module that holds exactly
    one layer (a FOMM block: conv, norm, relu, pool). The second is for runtimes that rename a
    fused node after the last op it absorbed: ONNX Runtime names a convolution fused with its ReLU
    ``.../down_blocks.0/relu/Relu_output_0_nchwc``."""
    node_names = list(node_names)
    layers = weighted_layers(module)
    own = {}
    for name in layers:
        scope = resolve_scope(name, node_names)
        if scope is not None:
            own[scope] = name
    first = {scope: next(i for i, node in enumerate(node_names) if node.startswith(scope)) for scope in own}
    scopes: dict[str, str] = {scope: own[scope] for scope in sorted(own, key=first.get)}  # graph order
    for name, _ in module.named_modules():
        held = [layer for layer in layers if layer == name or layer.startswith(name + ".")]
        if name and len(held) == 1 and held[0] in scopes.values():
            scope = resolve_scope(name, node_names)
            if scope is not None:
                scopes.setdefault(scope, held[0])
    return scopes


def onnx_node_names(graph: bytes) -> list[str]:
    import onnx

    return [node.name for node in onnx.load_from_string(graph).graph.node]


def layer_of(node: str, scopes: dict[str, str]) -> str | None:
    """The layer (:func:`layer_scopes`) a runtime's node name belongs to: the deepest scope wins."""
    matches = [scope for scope in scopes if node.startswith(scope)]
    return scopes[max(matches, key=len)] if matches else None


def float_layers_read_back(ops: Iterable[tuple[str, str]], scopes: dict[str, str]) -> list[str]:
    """``"layer precision"`` for every layer at least one of whose weighted ops ran in a float
    precision, from ``ops``: (node name, precision used) of the weighted ops a runtime executed.
    In graph order; a layer's first float precision is named."""
    found: dict[str, str] = {}
    for node, precision in ops:
        layer = layer_of(node, scopes)
        if layer is not None and precision in FLOAT_TYPES and layer not in found:
            found[layer] = precision
    order = list(dict.fromkeys(scopes.values()))
    return [f"{name} {found[name]}" for name in order if name in found]


# -- the QDQ graph: float layers read float ---------------------------------------------------------


def _pairs(graph) -> tuple[dict, dict]:
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    return producers, consumers


def _quantized_source(name: str, producers: dict) -> str | None:
    """``x`` when tensor ``name`` is DequantizeLinear(QuantizeLinear(x)), an activation's fake quantization."""
    dq = producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producers.get(dq.input[0])
    return q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None


def release_float_nodes(model, float_nodes: Iterable[str]) -> int:
    """Make the nodes named ``float_nodes`` of a QDQ ``model`` (an onnx ModelProto, changed in place)
    read their activations unquantized, then drop the activation Q/DQ pairs no int8 op needs.

    An op runs int8 when it is a convolution or matrix product with quantized weights, or another
    quantized op (concatenation, pooling, resize) whose quantized output an int8 op reads, directly
    or through such ops. A pair stays where it joins an int8 op to anything (its input or its
    output: ONNX Runtime fuses an op into an integer kernel only with both); a pair between two
    float ops only rounds, so it goes. With every layer float the result is the float graph.
    Returns the number of Q/DQ nodes removed."""
    graph = model.graph
    float_nodes = set(float_nodes)
    producers, _ = _pairs(graph)
    for node in graph.node:
        if node.name in float_nodes:
            for index, name in enumerate(node.input):
                source = _quantized_source(name, producers)
                if source is not None:
                    node.input[index] = source
    producers, consumers = _pairs(graph)
    quant_ops = ("QuantizeLinear", "DequantizeLinear")

    def dq_readers(node) -> list:
        """The nodes that read ``node``'s outputs through a Q/DQ pair."""
        return [r for out in node.output for q in consumers[out] if q.op_type == "QuantizeLinear"
                for dq in consumers[q.output[0]] if dq.op_type == "DequantizeLinear" for r in consumers[dq.output[0]]]  # fmt: skip

    int8 = {
        node.name for node in graph.node
        if node.op_type in WEIGHTED_ONNX_OPS and node.name not in float_nodes
        and any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input[1:2])
    }  # fmt: skip
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.name in int8 or node.name in float_nodes or node.op_type in quant_ops or node.op_type in WEIGHTED_ONNX_OPS:
                continue
            if any(r.name in int8 for r in dq_readers(node)):
                int8.add(node.name)
                changed = True
    outputs = {o.name for o in graph.output}
    dropped = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.output[0] in outputs:
            continue
        source = _quantized_source(node.output[0], producers)
        if source is None:
            continue
        maker = producers.get(source)
        readers = consumers[node.output[0]]
        if (maker is not None and maker.name in int8) or any(r.name in int8 for r in readers):
            continue
        for reader in readers:
            for index, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[index] = source
        dropped.append(node)
    for node in dropped:
        graph.node.remove(node)
    removed = len(dropped)
    while True:  # quantizations nothing reads any more
        _, consumers = _pairs(graph)
        dead = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.output[0] not in outputs
                and not consumers[n.output[0]]]  # fmt: skip
        if not dead:
            return removed
        for node in dead:
            graph.node.remove(node)
        removed += len(dead)
