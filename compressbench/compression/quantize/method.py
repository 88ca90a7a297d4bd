"""The ``quantize`` method: 8-bit static post-training quantization, or weight-only codebooks.

Static (default): the chosen parts (``parts``, default the hourglass and the jacobian head) are
calibrated on ``calib`` frames and replaced, at the same attribute, by an int8 module from the
chosen back-end that takes and returns float tensors.

The default back-end is ``fx``, the fastest measured on this project's 2-core AVX-512 VNNI
machine (full-size teacher, batch 1, default parts, quiet machine): with two threads fx ran 2.8x
faster than fp32 eager, pt2e 2.6x, onnxruntime 1.9x; with one thread 2.95x, 2.90x, 2.81x.
onnxruntime is the most faithful (keypoint error 0.19 px against a partly trained teacher; pt2e
0.20, fx about 0.3 with full-range activations) and degrades least when other processes load the
CPU (PyTorch's OpenMP barriers collapse under contention); pt2e needs torchao and a compiler; FX
graph mode is deprecated upstream.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult, replace_submodule
from compressbench.compression.methods import register_method
from compressbench.compression.quantize.backends import BACKENDS, get_backend
from compressbench.compression.quantize.codebook import (
    CODEBOOK_LAYERS,
    CODEBOOK_SIZE,
    LLOYD_ITERATIONS,
    codebook_layers,
)
from compressbench.compression.quantize.parts import (
    DEFAULT_PARTS,
    PARTS,
    batches,
    check_parts,
    parse_parts,
    part_inputs,
    present_parts,
)
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import size_bytes
from compressbench.progress import progress_bar

DEFAULT_BACKEND = "fx"
DEFAULT_CALIB = 32
REBUILD_SEED = 0
FLOAT_PARTS = ("softmax", "soft_argmax", "jacobian_pool")


def _relative_error(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    norm = float(reference.norm())
    return float((approximation - reference).norm()) / norm if norm > 0 else float((approximation - reference).norm())


@torch.no_grad()
def _part_error(float_part: nn.Module, quantized: nn.Module, inputs: torch.Tensor) -> float:
    """||q(x) - f(x)|| / ||f(x)|| over the calibration inputs, one frame at a time: batch 1 is what
    is benchmarked, and a compiled back-end (pt2e) then compiles for that shape only once."""
    want = torch.cat([float_part(x) for x in inputs.split(1)])
    got = torch.cat([quantized(x) for x in inputs.split(1)])
    return _relative_error(want, got)


def _positive(value: int) -> str | None:
    return None if value > 0 else f"must be a positive number of frames, got {value}"


@register_method
class Quantize(CompressionMethod):
    name = "quantize"
    summary = "8-bit post-training quantization (static int8 per backend, or weight-only codebooks)"
    int8 = True
    options = (
        Option("backend", str, DEFAULT_BACKEND, "int8 back-end", choices=tuple(BACKENDS.names())),
        Option("calib", int, DEFAULT_CALIB, "calibration frames", check=_positive),
        Option("parts", str, DEFAULT_PARTS, "comma-separated parts to quantize: down, predictor, kp, jacobian",
               check=check_parts),
        Option("weights_only", bool, False, "8-bit codebook weights only (smaller file, float arithmetic)"),
    )

    def unavailable(self, options: dict) -> str | None:
        if options["weights_only"]:  # codebooks need no back-end
            return None
        try:
            get_backend(options["backend"]).check_available()
        except CompressbenchError as exc:
            return str(exc)
        return None

    # -- static int8 ---------------------------------------------------------------------------

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        model = copy.deepcopy(model).eval()
        if options["weights_only"]:
            return self._apply_codebooks(model, context)
        backend = get_backend(options["backend"])
        backend.check_available()
        parts, missing = present_parts(model, parse_parts(options["parts"]))
        frames = context.frames(options["calib"])
        bytes_before = size_bytes(model)
        with progress_bar("quantize: calibrating", frames.shape[0] + len(parts), context.show_progress) as advance:
            inputs = part_inputs(model, parts, frames, advance)
            structure_parts, errors = {}, {}
            for part in parts:
                float_part = getattr(model, part)
                calibration = batches(inputs[part])
                quantized, extra = backend.quantize_part(float_part, calibration, part)
                errors[part] = _part_error(float_part, quantized, inputs[part])
                setattr(model, part, quantized)
                structure_parts[part] = {"input_shape": [1, *inputs[part].shape[1:]], **extra}
                advance(1, part=part)
        report = {
            "backend": backend.name,
            "engine": backend.engine,
            "quantized_parts": parts,
            "float_parts": [p for p in PARTS if p not in parts] + list(FLOAT_PARTS),
            "skipped_parts": missing,
            "calibration_frames": int(frames.shape[0]),
            "relative_error": errors,  # ||q(x) - f(x)|| / ||f(x)|| of each part on the calibration inputs
            "size_bytes_before": bytes_before,
            "size_bytes_after": size_bytes(model),
        }
        if backend.note:
            report["note"] = backend.note
        return StageResult(model, {"parts": structure_parts}, report, int8=bool(parts))

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        model = copy.deepcopy(model).eval()
        if options.get("weights_only"):
            return self._rebuild_codebooks(model, structure)
        backend = get_backend(options["backend"])
        backend.check_available()
        generator = torch.Generator().manual_seed(REBUILD_SEED)
        for part, info in structure.get("parts", {}).items():
            example = torch.rand(*info["input_shape"], generator=generator)
            setattr(model, part, backend.rebuild_part(getattr(model, part), example, info, part))
        return model

    # -- weight-only codebooks -----------------------------------------------------------------

    def _apply_codebooks(self, model: nn.Module, context: CompressionContext) -> StageResult:
        names = codebook_layers(model)
        bytes_before = size_bytes(model)
        errors = {}
        with progress_bar("quantize: codebooks", len(names), context.show_progress) as advance:
            for name in names:
                layer = model.get_submodule(name)
                replacement = CODEBOOK_LAYERS[type(layer)](layer)
                errors[name] = replacement.set_weight(layer.weight)
                replace_submodule(model, name, replacement)
                advance(1)
        weights = sum(model.get_submodule(n).indices.numel() for n in names)
        report = {
            "backend": "codebook",
            "codebook_size": CODEBOOK_SIZE,
            "lloyd_iterations": LLOYD_ITERATIONS,
            "layers": len(names),
            "relative_error": errors,  # ||W - W'|| / ||W|| per layer
            "mean_relative_error": sum(errors.values()) / len(errors) if errors else 0.0,
            "codebook_weights": weights,
            "size_bytes_before": bytes_before,
            "size_bytes_after": size_bytes(model),
        }
        return StageResult(model, {"codebook_layers": names}, report, int8=False)

    def _rebuild_codebooks(self, model: nn.Module, structure: dict) -> nn.Module:
        for name in structure.get("codebook_layers", []):
            layer = model.get_submodule(name)
            replace_submodule(model, name, CODEBOOK_LAYERS[type(layer)](layer))
        return model
