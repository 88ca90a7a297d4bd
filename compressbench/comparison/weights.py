"""Parameter counts that stay honest for 8-bit variants.

``module.parameters()`` misses weights that quantization moves elsewhere, so each module's own
parameters are counted and, where a module keeps weights outside them, those too:

- ``torch.ao`` quantized convolutions/linears (``quantize backend=fx``) hold int8 weights and
  biases in *packed* params: counted through ``_weight_bias()``, their unpacking accessor;
- a part run by ONNX Runtime (``OnnxModule``, ``backend=onnxruntime``) holds its graph as bytes:
  counted as the graph initializers that feed a Conv/Gemm/MatMul as weight or bias, directly or
  through a DequantizeLinear;
- 8-bit weight buffers (int8/uint8 or quantized dtype, e.g. the codebook's per-weight indices of
  ``weights_only``): one parameter per element.

Scales, zero points and codebooks are quantization metadata, not weights, and are not counted;
neither are BatchNorm running statistics, so a float model's count equals ``parameters()``'s, and
an int8 model's differs from its float parent's only by what quantization folded away (BatchNorm).
"""

from __future__ import annotations

import math

import torch
from torch import nn

EIGHT_BIT = (torch.uint8, torch.int8)
WEIGHT_CONSUMERS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def onnx_weight_count(graph: bytes) -> int:
    """Elements of the initializers an ONNX graph's Conv/Gemm/MatMul nodes take as weight or bias."""
    import onnx

    model = onnx.load_from_string(graph)
    initializers = {init.name: init for init in model.graph.initializer}
    dequantized_from = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    counted: set[str] = set()
    for node in model.graph.node:
        if node.op_type in WEIGHT_CONSUMERS:
            for name in node.input[1:]:
                source = dequantized_from.get(name, name)
                if source in initializers:
                    counted.add(source)
    return sum(math.prod(initializers[name].dims) for name in counted)


def hidden_weights(module: nn.Module) -> int:
    """Weights ``module`` itself (not its children) keeps outside ``parameters()``."""
    unpack = getattr(module, "_weight_bias", None)
    if callable(unpack):
        weight, bias = unpack()
        return weight.numel() + (bias.numel() if bias is not None else 0)
    serialized = getattr(module, "serialized", None)
    if isinstance(getattr(module, "onnx_bytes", None), torch.Tensor) and callable(serialized):
        return onnx_weight_count(serialized())
    return sum(b.numel() for b in module.buffers(recurse=False) if b.dtype in EIGHT_BIT or b.is_quantized)


def count_params(module: nn.Module) -> int:
    """Weights and biases of ``module``, wherever each submodule keeps them (see the module doc)."""
    return sum(sum(p.numel() for p in m.parameters(recurse=False)) + hidden_weights(m) for m in module.modules())
