"""Multiply-accumulates of a deployed graph (a bare ``.onnx`` or OpenVINO ``.xml`` without an export
manifest), counted from the graph and its shapes: the convolutions and matrix products, one MAC per
multiply-accumulate, per frame (a static batch of N counts N frames and is divided by N).

This is fvcore's convention for those ops (the count compressbench gives a PyTorch module), bias
adds not counted. What fvcore also counts, a graph does not hold as such: BatchNorm (2 per element),
which the exporter folds into the convolutions, and nearest up-sampling (1 per output element), a
copy in the graph (``Resize`` / ``Interpolate``). So on the float teacher a bare file's count is
fvcore's minus those two; ``tests/runtimes/test_deployed.py`` asserts the difference exactly.

- ONNX: `onnx-tool <https://github.com/ThanatosShinji/onnx-tool>`_ infers every tensor's shape for
  the file's input and profiles each node; its per-node MACs of the convolution and matrix-product
  ops are summed. onnx-tool adds one MAC per output element for a bias, which is taken off again.
- OpenVINO IR: no maintained package counts an IR's MACs, and ``openvino``'s Python API already
  holds every op's static shapes (``ov.Model.get_ops()``), so the count is written here: output
  elements times the weights one output element reads, per Convolution / GroupConvolution /
  ConvolutionBackpropData, and output elements times the reduced dimension per MatMul. An int8 IR
  keeps its convolutions (their weights behind FakeQuantize or Convert), so it counts the same.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Sequence

# ONNX ops that multiply and accumulate (float, integer and QLinear forms), and those of them whose
# third input is a bias onnx-tool counts as one MAC per output element
ONNX_MAC_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"}
ONNX_BIASED = {"Conv", "ConvTranspose", "Gemm"}


def onnx_macs(path: str | Path, input_shape: Sequence[int]) -> int | None:
    """MACs per frame of the ONNX graph at ``path`` for one input of ``input_shape`` (N, 3, S, S);
    None where onnx-tool cannot infer or profile the graph (an op it does not know)."""
    import numpy as np
    import onnx
    import onnx_tool

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # onnx-tool prints progress in some versions
            graph = onnx_tool.Model(onnx.load(str(path))).graph
            graph.shape_infer({graph.input[0]: np.zeros(tuple(input_shape), dtype=np.float32)})
            graph.profile()
    except (NotImplementedError, AssertionError, KeyError, IndexError, TypeError, ValueError):  # what onnx-tool raises
        return None
    total = 0
    for node in graph.nodemap.values():
        if node.op_type not in ONNX_MAC_OPS:
            continue
        macs = int(node.macs[0])
        if node.op_type in ONNX_BIASED and len(node.input) > 2 and node.input[2]:
            macs -= math.prod(graph.tensormap[node.output[0]].get_shape())
        total += macs
    return total // max(int(input_shape[0]), 1)


def openvino_macs(model) -> int:
    """MACs per frame of an ``openvino.Model`` (read from an IR), whose shapes are static."""
    total = 0
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind in ("Convolution", "GroupConvolution"):
            weights = list(op.get_input_shape(1))  # (Cout, Cin, k...) or (G, Cout/G, Cin/G, k...)
            per_output = math.prod(weights[1:] if kind == "Convolution" else weights[2:])
            total += math.prod(op.get_output_shape(0)) * per_output
        elif kind == "ConvolutionBackpropData":
            weights = list(op.get_input_shape(1))  # (Cin, Cout, k...): each input element feeds Cout * k outputs
            total += math.prod(op.get_input_shape(0)) * math.prod(weights[1:])
        elif kind == "MatMul":
            left = list(op.get_input_shape(0))
            transposed = bool(op.get_attributes().get("transpose_a", False))
            reduced = left[-2] if transposed and len(left) > 1 else left[-1]
            total += math.prod(op.get_output_shape(0)) * reduced
    batch = list(model.inputs[0].get_shape())[0] if model.inputs else 1
    return total // max(int(batch), 1)
