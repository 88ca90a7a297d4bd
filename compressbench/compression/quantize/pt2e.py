"""``pt2e``: PT2 export quantization with the X86 Inductor quantizer, compiled by torch.compile.

``torch.export`` captures the part, ``prepare_pt2e`` with ``X86InductorQuantizer`` (per-channel
int8 weights, uint8 activations) inserts observers, calibration runs, ``convert_pt2e`` writes
quantize/dequantize pairs around float ops and keeps the weights as int8 tensors. That graph alone
runs the q/dq arithmetic in float (slower than fp32); the speed comes from Inductor, which with
*freezing* (weights as constants) fuses the pairs into oneDNN int8 convolutions. Without freezing
the compiled graph is slower than fp32 eager, which may be what other measurements saw.

PT2E moved out of torch into torchao (torch 2.13 no longer ships ``torch.ao.quantization.
quantize_pt2e``), so this back-end needs ``pip install torchao``; compiling needs a C++ compiler.
The compiled function is built on the first call for each batch size and thread count (seconds
to minutes; Inductor also caches on disk) and discarded when a state dict is loaded.

Saving: the int8 weights, their per-channel scales and the float biases are tensors in the state
dict, but PT2E writes the activation scales/zero points into the graph as literals, so they travel
in the stage's ``structure``. Rebuilding re-exports and converts the fresh float part on one random
batch (same graph), writes the saved activation parameters back, and the state dict does the rest.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from compressbench.compression.quantize.backends import QuantBackend, error_detail, register_backend
from compressbench.errors import CompressbenchError
from compressbench.warnings import import_quietly


def _pt2e_api():
    """(prepare_pt2e, convert_pt2e, X86InductorQuantizer, default config) from torchao, or from
    torch itself on releases that still ship them."""
    try:
        import_quietly("torchao")  # its import logs CUDA-kernel and pytree lines a CPU user can do nothing about
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    except ImportError:
        try:
            from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torch.ao.quantization.quantizer import x86_inductor_quantizer as x86
        except ImportError:
            raise CompressbenchError(
                "quantize: backend pt2e needs torchao (PT2E quantization moved from torch to torchao); "
                "run pip install torchao, or choose --backend fx"
            ) from None
    return prepare_pt2e, convert_pt2e, x86.X86InductorQuantizer, x86.get_default_x86_inductor_quantization_config


class CompiledInt8(nn.Module):
    """A converted PT2E graph (int8 weights + q/dq ops) that runs through Inductor with freezing."""

    onnx_export_obstacle = "is a PT2E int8 graph run by torch.compile (quantize backend=pt2e); it cannot be exported"

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph
        # thread count -> compiled callable, kept out of nn.Module's registry (a compiled wrapper
        # registered as a child would duplicate the graph's state dict)
        object.__setattr__(self, "_compiled", {})

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        object.__setattr__(self, "_compiled", {})  # freezing baked the previous weights into the compiled code

    def train(self, mode: bool = True) -> CompiledInt8:
        # exported graphs refuse train()/eval(); an int8 inference graph has no training mode anyway
        self.training = mode
        return self

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_compiled"] = {}  # compiled callables are not copyable; recompiled lazily
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch._inductor import config as inductor_config

        # Inductor writes the thread count into its C++ kernels, so each count gets its own
        # compiled function (torch.compile does not guard on it).
        threads = torch.get_num_threads()
        compiled = self._compiled.get(threads)
        if compiled is None:
            compiled = self._compiled[threads] = torch.compile(self.graph, dynamic=False)
        # Compilation happens inside calls (first call, and each new batch size). Freezing must be
        # set in Inductor's global config there: passed as a torch.compile option, int8 weight
        # prepacking fails. Freezing only applies without autograd.
        with torch.no_grad(), inductor_config.patch(freezing=True):
            return compiled(x)


ACTIVATION_QPARAM_OPS = (
    "quantized_decomposed.quantize_per_tensor.default",
    "quantized_decomposed.dequantize_per_tensor.default",
)


def _activation_nodes(graph: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in graph.graph.nodes if n.op == "call_function" and str(n.target) in ACTIVATION_QPARAM_OPS]


def activation_qparams(graph: torch.fx.GraphModule) -> list[list]:
    """[scale, zero_point] of every activation (de)quantize node, in graph order. PT2E writes these
    into the graph as literals, not into the state dict, so a saved variant keeps them here."""
    return [[float(n.args[1]), int(n.args[2])] for n in _activation_nodes(graph)]


def set_activation_qparams(graph: torch.fx.GraphModule, qparams: list[list]) -> None:
    """Put saved activation scales/zero points back into a freshly converted graph."""
    nodes = _activation_nodes(graph)
    if len(nodes) != len(qparams):
        raise CompressbenchError(
            f"quantize: the saved pt2e variant has {len(qparams)} activation quantizers but the rebuilt graph "
            f"has {len(nodes)}; it was made with a different model or torchao version"
        )
    for node, (scale, zero_point) in zip(nodes, qparams):
        node.args = (node.args[0], float(scale), int(zero_point), *node.args[3:])
    graph.recompile()


def _drop_unused_state(graph: torch.fx.GraphModule) -> None:
    """Remove parameters/buffers no node reads (convert_pt2e leaves the float conv weights behind
    next to their int8 copies), so the state dict holds only what runs."""
    used = {n.target for n in graph.graph.nodes if n.op == "get_attr"}
    for name in [k for k in graph.state_dict() if k not in used]:
        owner_name, _, attr = name.rpartition(".")
        owner = graph.get_submodule(owner_name) if owner_name else graph
        delattr(owner, attr)


@torch.no_grad()
def quantize_pt2e(module: nn.Module, calibration: list[torch.Tensor]) -> nn.Module:
    """Float ``module`` -> converted PT2E GraphModule calibrated on ``calibration`` batches."""
    prepare_pt2e, convert_pt2e, quantizer_class, default_config = _pt2e_api()
    float_module = copy.deepcopy(module).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # export and torchao print version/deprecation notices
        # Calibration, rebuilding and inference use different batch sizes. A symbolic batch axis
        # breaks Inductor's int8 weight prepacking, so the graph is exported for one batch size
        # and its batch guard dropped (these convolutional graphs never bake the batch in).
        exported = torch.export.export(float_module, (calibration[0],)).module(check_guards=False)
        quantizer = quantizer_class()
        quantizer.set_global(default_config())
        prepared = prepare_pt2e(exported, quantizer)
        for batch in calibration:
            prepared(batch)
        converted = convert_pt2e(prepared)
    _drop_unused_state(converted)
    return converted


@register_backend
class Pt2eBackend(QuantBackend):
    name = "pt2e"
    summary = "torch.export + torchao PT2E X86InductorQuantizer, run by torch.compile with freezing"
    engine = "onednn"
    note = "compiled on first call per batch size and thread count (seconds to minutes); needs a C++ compiler"

    def check_available(self) -> None:
        super().check_available()
        _pt2e_api()

    def quantize_part(self, module, calibration, part):
        try:
            graph = quantize_pt2e(module, calibration)
        except CompressbenchError:
            raise
        except Exception as exc:  # torch.export / torchao raise many error types for untraceable code
            detail = error_detail(exc)
            raise CompressbenchError(
                f"quantize: backend pt2e cannot quantize part {part} ({detail}); leave it out of --parts"
            ) from None
        compiled = CompiledInt8(graph)
        try:
            compiled(calibration[0][:1])  # compile now (batch 1, as benchmarked) so failures surface here
        except Exception as exc:  # Inductor's errors (no C++ compiler, lowering failures) share no base
            detail = error_detail(exc)
            raise CompressbenchError(
                f"quantize: torch.compile failed for part {part} ({detail}); pt2e needs a working C++ "
                "compiler, or choose --backend fx"
            ) from None
        return compiled, {"activation_qparams": activation_qparams(graph)}

    def rebuild_part(self, module, example, structure, part):
        graph = quantize_pt2e(module, [example])
        set_activation_qparams(graph, structure.get("activation_qparams", []))
        return CompiledInt8(graph)
