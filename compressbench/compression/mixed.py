"""The ``mixed`` method: the int8 runtimes keep the named layers in float.

Nothing changes in PyTorch: the stage attaches an :class:`~compressbench.runtimes.layers.Int8Plan`
to the model, which ONNX Runtime's and OpenVINO's int8 (the QDQ graph, or NNCF's ignored scope)
honour, and which the run record reads back (``float_layers``). ``float_layers`` names modules by
their ``named_modules`` name, comma-separated (``predictor.decoder.up_blocks.4.conv,kp,jacobian``);
a whole block or the decoder works too. ``float_precision=bf16`` lets OpenVINO run them in bf16 on
a CPU that has it (one hint for the whole compiled model: every float convolution runs bf16, the
heads after the last convolution stay f32; see :mod:`compressbench.runtimes.layers`); ONNX Runtime
runs them in fp32 and says so.

Which layers to keep float is what :func:`compressbench.compression.sensitivity.mixed_precision`
measures; its :func:`~compressbench.compression.sensitivity.mixed_precision_stage` returns this
stage. The stage is recorded in the provenance, so a saved variant reloads with its plan. It is the
last stage of a chain by intent: a later stage that replaces a named layer drops it from the graph,
and the int8 runtimes then refuse the plan with one line.
"""

from __future__ import annotations

import copy

from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.methods import register_method
from compressbench.errors import CompressbenchError
from compressbench.runtimes.layers import FLOAT_PRECISIONS, Int8Plan, parse_layer_list, plan_of, set_plan


def _names(value: str) -> str | None:
    for name in parse_layer_list(value):
        if any(part == "" for part in name.split(".")):
            return f"has an empty part in {name!r}; give module names such as kp or predictor.decoder.up_blocks.4.conv"
    return None


def _plan(model: nn.Module, options: dict) -> Int8Plan:
    layers = parse_layer_list(options["float_layers"])
    earlier = plan_of(model)  # a second mixed stage adds to the first
    merged = earlier.float_layers + tuple(name for name in layers if name not in earlier.float_layers)
    return Int8Plan(merged, earlier.only, options["float_precision"])


@register_method
class Mixed(CompressionMethod):
    name = "mixed"
    summary = "int8 runtimes (openvino, onnxruntime) keep the named layers in float (fp32, or bf16 on openvino)"
    options = (
        Option("float_layers", str, "", "comma-separated module names kept float in int8, e.g. kp,jacobian", check=_names),
        Option("float_precision", str, "fp32", "what the float layers run in (bf16: openvino on a CPU with bf16)",
               choices=FLOAT_PRECISIONS),
    )  # fmt: skip

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        module = copy.deepcopy(model).eval()
        plan = _plan(module, options)
        try:
            set_plan(module, plan)
        except CompressbenchError as exc:
            raise CompressbenchError(f"mixed: {exc}") from None
        report = {"float_layers": list(plan.float_layers), "float_precision": plan.float_precision}
        return StageResult(module, {"float_layers": list(plan.float_layers)}, report)

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        layers = tuple(structure.get("float_layers") or parse_layer_list(options["float_layers"]))
        try:
            return set_plan(model, Int8Plan(layers, plan_of(model).only, options["float_precision"]))
        except CompressbenchError as exc:
            raise CompressbenchError(f"the saved mixed stage does not fit this base model ({exc})") from None
