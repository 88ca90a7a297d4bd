"""Rewrites that change no output (up to float rounding).

- ``fold_bn``: an eval-mode BatchNorm is an affine map per channel, so it folds into the
  convolution whose output it normalises; the BatchNorm becomes ``nn.Identity`` (module names of
  the rest stay stable) and the convolution carries the bias.
- ``anti_alias``: FOMM blurs the whole image with a Gaussian and then keeps every 4th pixel
  (nearest down-sampling by 1/4 picks source index 4*i). Blurring only the kept pixels is a
  convolution with stride 4, and the Gaussian is an outer product of two 1-D kernels, so it runs as
  a vertical then a horizontal pass, each one banded matrix product.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult, replace_submodule
from compressbench.compression.methods import register_method
from compressbench.errors import CompressbenchError
from compressbench.models.heads import AntiAliasInterpolation2d
from compressbench.profiling.counting import count_params

SEPARABLE_TOLERANCE = 1e-6  # relative to the kernel's largest entry
INTEGER_TOLERANCE = 1e-9


def separable_factors(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split a depthwise (C, 1, k, k) kernel into (C, 1, k, 1) and (C, 1, 1, k) factors whose
    product is the kernel, or None when it is not an outer product (rank 1) per channel."""
    w = weight.double()
    column = w.sum(dim=3, keepdim=True)  # a_i * sum(b)
    row = w.sum(dim=2, keepdim=True) / w.sum(dim=(2, 3), keepdim=True)  # b_j / sum(b)
    if not torch.isfinite(row).all():
        return None
    error = (column * row - w).abs().max()
    if error > SEPARABLE_TOLERANCE * w.abs().max():
        return None
    return column.to(weight.dtype), row.to(weight.dtype)


def integer_stride(scale: float) -> int | None:
    """1/scale when it is a whole number (nearest down-sampling then keeps every n-th pixel)."""
    inverse = 1.0 / scale
    stride = round(inverse)
    return stride if stride >= 1 and abs(inverse - stride) < INTEGER_TOLERANCE else None


class StridedSeparableAntiAlias(nn.Module):
    """The output of :class:`AntiAliasInterpolation2d`, blurring only the pixels that nearest
    down-sampling keeps: each 1-D pass (columns, then rows) is one banded matrix product.

    Blur-then-keep-every-n-th-pixel along one axis is a linear map from ``size`` inputs to
    ``size / n`` outputs, i.e. a (size/n x size) matrix with the 1-D kernel on shifted rows (the zero
    padding falls off its edges). Two batched matrix products do more multiply-adds than two strided
    depthwise convolutions, but BLAS runs them several times faster than the convolution kernels for
    three-channel inputs. It keeps FOMM's 2-D kernel as its ``weight`` buffer (same name and shape),
    so state dicts and FOMM checkpoints stay interchangeable; the 1-D factors and the band matrices
    are derived from it (refreshed whenever a state dict is loaded).
    """

    def __init__(self, weight: torch.Tensor, scale: float, ka: int, kb: int) -> None:
        super().__init__()
        stride = integer_stride(scale)
        if stride is None:
            raise ValueError(f"1/scale must be a whole number, got scale {scale}")
        self.scale = scale
        self.stride = stride
        self.ka = ka
        self.kb = kb
        self.groups = weight.shape[0]
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("column", torch.empty(0), persistent=False)
        self.register_buffer("row", torch.empty(0), persistent=False)
        self._bands: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._refresh_factors()

    @classmethod
    def from_original(cls, original: AntiAliasInterpolation2d) -> StridedSeparableAntiAlias:
        return cls(original.weight, original.scale, original.ka, original.kb)

    def _refresh_factors(self) -> None:
        factors = separable_factors(self.weight)
        if factors is None:
            raise CompressbenchError(
                "the anti-alias kernel (down.weight) is not separable; run exact with anti_alias=false"
            )
        self.column, self.row = factors
        self._bands = {}

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_factors()

    def _band(self, factor: torch.Tensor, size: int) -> torch.Tensor:
        """(C, size // stride-ish, size): output ``i`` sums ``factor[k] * x[i * stride + k - ka]``."""
        channels, taps = factor.shape
        kept = math.floor(size * self.scale)
        padded = torch.zeros(channels, kept, size + self.ka + self.kb, dtype=factor.dtype, device=factor.device)
        rows = torch.arange(kept, device=factor.device).repeat_interleave(taps)
        cols = (torch.arange(kept, device=factor.device)[:, None] * self.stride + torch.arange(taps, device=factor.device)).flatten()
        padded[:, rows, cols] = factor.repeat(1, kept)
        return padded[:, :, self.ka : self.ka + size]

    def bands(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The column matrix (C, H', H) and the transposed row matrix (C, W, W') for this input size."""
        key = (height, width, dtype, device)
        if key not in self._bands:
            with torch.inference_mode(False), torch.no_grad():  # usable later with autograd too
                column = self.column.to(device, dtype).reshape(self.groups, -1)
                row = self.row.to(device, dtype).reshape(self.groups, -1)
                self._bands[key] = (self._band(column, height), self._band(row, width).transpose(1, 2).contiguous())
        return self._bands[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        column, row = self.bands(x.shape[2], x.shape[3], x.dtype, x.device)
        return torch.matmul(torch.matmul(column, x), row)


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, norm) names where the BatchNorm's only input is the conv's output and nothing else
    reads that output (found from one traced forward: module hooks plus the autograd graph)."""
    conv_out: dict[int, tuple[str, torch.Tensor]] = {}
    norm_in: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):

            def on_conv(_m, _inputs, output, name=name):
                calls[name] = calls.get(name, 0) + 1
                conv_out[id(output)] = (name, output)

            hooks.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.BatchNorm2d) and module.track_running_stats and module.running_mean is not None:

            def on_norm(_m, inputs, _output, name=name):
                calls[name] = calls.get(name, 0) + 1
                norm_in[name] = inputs[0]

            hooks.append(module.register_forward_hook(on_norm))
    saved_flags = [p.requires_grad for p in model.parameters()]
    try:
        for parameter in model.parameters():
            parameter.requires_grad_(True)  # so every conv output has a node in the autograd graph
        with torch.enable_grad():
            outputs = model(example)
    finally:
        for hook in hooks:
            hook.remove()
        for parameter, flag in zip(model.parameters(), saved_flags):
            parameter.requires_grad_(flag)

    consumers: dict[object, int] = {}
    roots = [t for t in (outputs.values() if isinstance(outputs, dict) else [outputs]) if t.grad_fn is not None]
    for tensor in roots:
        consumers[tensor.grad_fn] = consumers.get(tensor.grad_fn, 0) + 1  # a model output is a reader too
    seen = set()
    stack = [t.grad_fn for t in roots]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for parent in {p for p, _ in node.next_functions if p is not None}:
            consumers[parent] = consumers.get(parent, 0) + 1
            stack.append(parent)

    pairs = []
    for norm_name, tensor in norm_in.items():
        found = conv_out.get(id(tensor))
        if found is None or found[1] is not tensor:
            continue
        conv_name = found[0]
        if calls.get(conv_name) == 1 and calls.get(norm_name) == 1 and consumers.get(tensor.grad_fn) == 1:
            pairs.append((conv_name, norm_name))
    return sorted(pairs)


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Make ``conv`` compute norm(conv(x)) (eval mode), in place; it gains a bias if it had none."""
    std = (norm.running_var.double() + norm.eps).sqrt()
    gain = norm.weight.double() / std if norm.affine else 1.0 / std
    shift = (norm.bias.double() if norm.affine else 0.0) - norm.running_mean.double() * gain
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(gain)
    conv.weight.copy_((conv.weight.double() * gain.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    folded_bias = (bias * gain + shift).to(conv.weight.dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(folded_bias)
    else:
        conv.bias.copy_(folded_bias)


def _replace_norms(model: nn.Module, pairs: list[tuple[str, str]]) -> None:
    for conv_name, norm_name in pairs:
        conv = model.get_submodule(conv_name)
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, dtype=conv.weight.dtype, device=conv.weight.device))
        replace_submodule(model, norm_name, nn.Identity())


def _anti_alias_obstacle(model: nn.Module) -> str | None:
    down = getattr(model, "down", None)
    if isinstance(down, nn.Conv2d):
        return "the input stage at .down is already a strided convolution (a learned stem): no blur to rewrite"
    if not isinstance(down, AntiAliasInterpolation2d):
        return "the model has no FOMM anti-alias stage at .down"
    if down.scale == 1.0 or integer_stride(down.scale) is None:
        return f"1/scale is not a whole number (scale {down.scale})"
    if separable_factors(down.weight) is None:
        return "its kernel is not separable"
    return None


def _max_abs_diff(before: dict, after: dict) -> dict[str, float]:
    return {key: float((after[key] - before[key]).abs().max()) for key in before}


@register_method
class Exact(CompressionMethod):
    name = "exact"
    summary = "output-preserving rewrites: fold BatchNorm into convs, strided separable anti-alias"
    options = (
        Option("fold_bn", bool, True, "fold every eval-mode BatchNorm into the convolution before it"),
        Option("anti_alias", bool, True, "blur only the kept pixels: one banded matrix product per axis"),
    )

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        original = copy.deepcopy(model).eval()  # the reference; ``model`` itself stays untouched
        rewritten = copy.deepcopy(model).eval()
        example = context.example()
        rewrites = []
        pairs: list[tuple[str, str]] = []
        if options["fold_bn"]:
            pairs = _conv_bn_pairs(rewritten, example)
            for conv_name, norm_name in pairs:
                fold_batchnorm(rewritten.get_submodule(conv_name), rewritten.get_submodule(norm_name))
            _replace_norms(rewritten, pairs)
            rewrites.append({"rewrite": "fold_bn", "applied": bool(pairs), "batchnorms_folded": len(pairs)})
        anti_alias = False
        if options["anti_alias"]:
            obstacle = _anti_alias_obstacle(rewritten)
            anti_alias = obstacle is None
            if anti_alias:
                rewritten.down = StridedSeparableAntiAlias.from_original(rewritten.down)
            rewrites.append(
                {"rewrite": "anti_alias", "applied": anti_alias, **({"skipped_because": obstacle} if obstacle else {})}
            )

        with torch.no_grad():
            difference = _max_abs_diff(original(example), rewritten(example))
        report = {
            "rewrites": rewrites,
            "max_abs_diff": difference,
            "params_before": count_params(original),
            "params_after": count_params(rewritten),
        }
        structure = {"folded": [{"conv": c, "norm": n} for c, n in pairs], "anti_alias": anti_alias}
        return StageResult(rewritten, structure, report)

    def folds_batchnorm(self, options: dict) -> bool:
        return bool(options.get("fold_bn"))

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Apply the recorded rewrites' structure to ``model`` (in place)."""
        try:
            _replace_norms(model, [(p["conv"], p["norm"]) for p in structure.get("folded", [])])
        except (AttributeError, KeyError) as exc:
            raise CompressbenchError(f"the saved exact stage does not fit this base model ({exc})") from None
        if structure.get("anti_alias"):
            if not isinstance(getattr(model, "down", None), AntiAliasInterpolation2d):
                raise CompressbenchError(
                    "the saved exact stage rewrote .down, but this base model has no anti-alias stage"
                )
            model.down = StridedSeparableAntiAlias.from_original(model.down)
        return model
