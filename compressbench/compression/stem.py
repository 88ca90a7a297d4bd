"""``stem``: the fixed anti-alias input stage becomes a learned strided convolution.

FOMM's detector first blurs the whole 256x256 frame with a 13x13 Gaussian (sigma 1.5) and keeps
every 4th pixel (:class:`~compressbench.models.heads.AntiAliasInterpolation2d`); the hourglass sees
the 3-channel 64x64 result. No pruning, swap or quantization touches that stage, so its time is a
fixed share of every variant (the larger, the faster the rest becomes). ``stem`` replaces it by one
plain ``nn.Conv2d`` from the frame to the same 3-channel map: stride 1/scale (4), a small kernel,
zero bias, and padding chosen so that output pixel ``i`` is centred where the blur's is, on input
pixel ``4 i`` (odd kernels; even ones are centred half a pixel later, 4 i + 0.5, the nearest a
symmetric padding gets).

Initialisation (``init=gaussian``): the teacher's own Gaussian, cut to the kernel's window around
that centre and renormalised to sum 1, on the diagonal (each colour from itself). So before any
training the stem is a narrower blur of the same frame, and the detector nearly agrees with the
teacher; kernel 13 (odd) reproduces the blur exactly. The stage is structural: a ``recover`` stage
after it trains the stem together with the rest of the detector towards the teacher.

The 3-channel 64x64 map stays: it is the hourglass's input *and* a skip that the last up block's
output is concatenated with (``Encoder`` returns it as ``outs[0]``), so the stem cannot also absorb
the first down block without changing the decoder. The stem sits at ``down``, where the blur was, so
profiling still counts it as the ``anti_alias`` group, pruning leaves it alone and ``quantize`` can
take it as part ``down``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.exact import StridedSeparableAntiAlias, integer_stride
from compressbench.compression.methods import register_method
from compressbench.errors import CompressbenchError
from compressbench.models.heads import AntiAliasInterpolation2d
from compressbench.profiling.counting import count_params

MAX_KERNEL = 13  # the teacher's blur is 13 wide: a wider stem would only add zeros
INIT_CHOICES = ("gaussian", "random")
ANTI_ALIAS_TYPES = (AntiAliasInterpolation2d, StridedSeparableAntiAlias)


def stem_padding(kernel: int) -> int:
    """Symmetric padding that centres output ``i`` on input ``stride * i`` (odd kernels) or half a
    pixel after it (even kernels), and gives exactly ``size / stride`` outputs for any size that
    ``stride`` divides, as the blur does: (k - 1) // 2."""
    return (kernel - 1) // 2


def stem_params(channels: int, kernel: int, depthwise: bool) -> int:
    """Parameters of the stem: (C x C or C x 1) k x k weights plus C biases."""
    return channels * (1 if depthwise else channels) * kernel * kernel + channels


def build_stem(channels: int, kernel: int, stride: int, depthwise: bool) -> nn.Conv2d:
    """A fresh stem (PyTorch default init) with the given shape."""
    return nn.Conv2d(
        channels,
        channels,
        kernel_size=kernel,
        stride=stride,
        padding=stem_padding(kernel),
        groups=channels if depthwise else 1,
        bias=True,
    )


def gaussian_window(blur: torch.Tensor, kernel: int) -> tuple[torch.Tensor, float]:
    """The (k, k) window of the blur's (K, K) kernel that a stem of size ``kernel`` covers, renormalised
    to sum 1, and the share of the blur's weight it held before renormalising.

    The blur's centre tap (K // 2) lands on input ``stride * i``; the stem's tap ``j`` reads
    ``stride * i + j - padding``, i.e. blur tap ``K // 2 + j - padding``."""
    size = blur.shape[-1]
    start = size // 2 - stem_padding(kernel)
    window = blur.double()[start : start + kernel, start : start + kernel]
    kept = float(window.sum() / blur.double().sum())
    return window / window.sum(), kept


@torch.no_grad()
def initialise_from_blur(stem: nn.Conv2d, blur_weight: torch.Tensor) -> float:
    """Put the blur's renormalised window on the stem's diagonal (channel c from channel c), zero bias;
    returns the share of the blur's weight the window kept (the mean over channels)."""
    channels, kernel = stem.out_channels, stem.kernel_size[0]
    depthwise = stem.groups == channels and channels > 1
    weight = torch.zeros(stem.weight.shape, dtype=torch.float64)
    kept = []
    for c in range(channels):
        window, share = gaussian_window(blur_weight[c, 0], kernel)
        weight[c, 0 if depthwise else c] = window
        kept.append(share)
    stem.weight.copy_(weight.to(stem.weight.dtype))
    stem.bias.zero_()
    return sum(kept) / len(kept)


def _check_kernel(value: int) -> str | None:
    if 1 <= value <= MAX_KERNEL:
        return None
    return f"must be between 1 and {MAX_KERNEL} (the teacher's blur is {MAX_KERNEL} wide), got {value}"


def _input_stage(model: nn.Module, method: str) -> nn.Module:
    """The model's anti-alias stage at ``.down`` (FOMM's, or exact's rewrite of it)."""
    down = getattr(model, "down", None)
    if isinstance(down, nn.Conv2d):
        raise CompressbenchError(f"{method}: the input stage is already a learned stem; apply {method} once")
    if not isinstance(down, ANTI_ALIAS_TYPES) or not hasattr(model, "predictor"):
        raise CompressbenchError(
            f"{method}: the model has no FOMM anti-alias input stage at .down to replace (scale 1 detectors "
            "and students without one have nothing to learn here); use a keypoint detector such as teacher"
        )
    if integer_stride(down.scale) is None or down.scale == 1.0:
        raise CompressbenchError(
            f"{method}: the anti-alias stage scales by {down.scale:g}; a strided stem needs 1/scale to be a whole number"
        )
    return down


@torch.no_grad()
def _max_abs_diff(before: dict, after: dict) -> dict[str, float]:
    return {key: float((after[key] - before[key]).abs().max()) for key in before}


@register_method
class Stem(CompressionMethod):
    name = "stem"
    summary = (
        "replace the fixed anti-alias input stage (13x13 blur, keep every 4th pixel) by a learned "
        "strided convolution, initialised from the blur (recover trains it)"
    )
    options = (
        Option(
            "kernel",
            int,
            5,
            f"stem kernel size, 1..{MAX_KERNEL}; odd sizes are centred as the blur is, {MAX_KERNEL} reproduces it "
            "exactly, 1 is plain subsampling",
            check=_check_kernel,
        ),
        Option("depthwise", bool, False, "one kernel per colour channel (as the blur) instead of a dense 3->3 stem"),
        Option(
            "init",
            str,
            "gaussian",
            "gaussian: the blur's kernel cut to the window and renormalised (no training needed to start close); "
            "random: PyTorch's default init",
            choices=INIT_CHOICES,
        ),
    )
    structural = True

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        down = _input_stage(model, self.name)
        original = copy.deepcopy(model).eval()
        model = copy.deepcopy(model).eval()
        channels = int(down.weight.shape[0])
        stride = integer_stride(down.scale)
        kernel = int(options["kernel"])
        reference = down.weight.detach()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)  # the default init draws from the global RNG
            stem = build_stem(channels, kernel, stride, options["depthwise"])
        stem.to(dtype=reference.dtype, device=reference.device)
        kept = initialise_from_blur(stem, reference) if options["init"] == "gaussian" else None
        params_before = count_params(original)
        model.down = stem
        example = context.example()
        with torch.no_grad():
            map_before, map_after = original.down(example), stem(example)
            if map_before.shape != map_after.shape:  # stem_padding guarantees it; keep the contract checked
                raise CompressbenchError(
                    f"{self.name}: the stem gives a {tuple(map_after.shape)} map where the blur gave "
                    f"{tuple(map_before.shape)}; use an input size that {stride} divides"
                )
            difference = _max_abs_diff(original(example), model(example))
            map_error = float((map_after - map_before).norm() / map_before.norm().clamp_min(1e-12))
        report = {
            "kernel": kernel,
            "stride": stride,
            "padding": stem_padding(kernel),
            "depthwise": bool(options["depthwise"]),
            "init": options["init"],
            "stem_params": count_params(stem),
            "blur_weight_kept": kept,
            "input_map_relative_error": map_error,
            "max_abs_diff": difference,
            "params_before": params_before,
            "params_after": count_params(model),
        }
        structure = {
            "channels": channels,
            "kernel": kernel,
            "stride": stride,
            "depthwise": bool(options["depthwise"]),
        }
        return StageResult(model, structure, report)

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Put a fresh stem of the saved shape at ``.down`` (the saved state dict brings its weights)."""
        try:
            channels, kernel, stride = int(structure["channels"]), int(structure["kernel"]), int(structure["stride"])
            depthwise = bool(structure["depthwise"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CompressbenchError(
                f"{self.name}: the saved structure is damaged ({exc}); save the variant again"
            ) from None
        down = _input_stage(model, self.name)
        if int(down.weight.shape[0]) != channels or integer_stride(down.scale) != stride:
            raise CompressbenchError(
                f"{self.name}: the saved stem ({channels} channels, stride {stride}) does not fit this base model's "
                f"input stage ({down.weight.shape[0]} channels, scale {down.scale:g}); the file belongs to another model"
            )
        model = copy.deepcopy(model)
        reference = down.weight
        model.down = build_stem(channels, kernel, stride, depthwise).to(dtype=reference.dtype, device=reference.device)
        return model
