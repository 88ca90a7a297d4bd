"""``heads``: the 7x7 keypoint and jacobian heads become smaller convolutions with the same output grid.

FOMM's detector ends in two 7x7 convolutions over the hourglass's full-resolution output (the last
up block's channels plus the 3-channel input map, 64x64): ``kp`` to the K heatmaps and ``jacobian``
to 4 K jacobian maps. Pruning narrows their input but cannot touch their kernels or outputs, so
after pruning they are among the largest shares left: after the search's ``prune-lat-0.8`` plan the
two heads do more multiply-adds than the whole hourglass (70 M against 52 M, fvcore).

``heads`` replaces each by a k x k :class:`CroppedConv2d` that first crops ``(7 - k) / 2`` pixels
from every side of the feature map (less the head's own padding), so output pixel ``i`` is centred
where the 7x7 head's was and the heatmap keeps its size: soft-argmax's coordinate grid, and so
every keypoint's meaning, stay the same. Initialisation (``init=fit``, the default): least squares
from the small window to the old head's outputs on calibration frames (:func:`fit_to_old_head`);
``init=centre``: the centre k x k window of the old kernel and its bias, the old head without its
outer ring. The stage is structural: a ``recover`` after it trains the heads with the rest
(``benchmarks/ends_probe.py`` measures what that leaves).

:class:`CroppedConv2d` is an ``nn.Conv2d`` with the same ``weight``/``bias`` names, so pruning,
profiling, quantization parts and the ONNX export see a convolution at ``kp``/``jacobian`` as before.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.methods import register_method
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import count_params

HEAD_NAMES = ("kp", "jacobian")
WHICH_CHOICES = ("both", "kp", "jacobian")
INIT_CHOICES = ("fit", "centre", "random")
FIT_FRAMES = 16  # calibration frames the least-squares fit reads: 16 x 58 x 58 output pixels per channel


class CroppedConv2d(nn.Conv2d):
    """A convolution that reads its input less ``crop`` pixels on every side (FOMM heads made smaller
    keep their output grid this way; a negative crop is impossible, so padding takes the rest)."""

    def __init__(self, *args, crop: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.crop = int(crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.crop
        if c:
            x = x[:, :, c : x.shape[2] - c, c : x.shape[3] - c]
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, crop={self.crop}"


def crop_and_padding(old_kernel: int, old_padding: int, kernel: int) -> tuple[int, int]:
    """(crop, padding) for a ``kernel``-wide head with the output grid of an ``old_kernel``-wide head
    padded by ``old_padding``: the shrink (old - new) / 2 comes off the padding first, then the input."""
    shrink = (old_kernel - kernel) // 2
    return max(0, shrink - old_padding), max(0, old_padding - shrink)


def build_head(old: nn.Conv2d, kernel: int) -> CroppedConv2d:
    """A fresh (PyTorch default init) ``kernel``-wide head with ``old``'s channels and output grid."""
    crop, padding = crop_and_padding(old.kernel_size[0], old.padding[0], kernel)
    return CroppedConv2d(old.in_channels, old.out_channels, kernel, padding=padding, bias=old.bias is not None, crop=crop)


@torch.no_grad()
def initialise_from_centre(head: nn.Conv2d, old: nn.Conv2d) -> float:
    """Copy the centre window of ``old``'s kernel (and its bias) into ``head``; returns the share of
    the old kernel's absolute weight that the window holds (1.0 where the outer ring was zero)."""
    start = (old.kernel_size[0] - head.kernel_size[0]) // 2
    window = old.weight[:, :, start : start + head.kernel_size[0], start : start + head.kernel_size[1]]
    head.weight.copy_(window)
    if head.bias is not None:
        head.bias.copy_(old.bias)
    total = float(old.weight.abs().sum())
    return float(window.abs().sum()) / total if total > 0 else 1.0


RIDGE = 1e-6  # the pull towards the centre window, relative to the design's mean squared column


@torch.no_grad()
def fit_to_old_head(head: CroppedConv2d, old: nn.Conv2d, features: torch.Tensor) -> None:
    """Set ``head``'s weights and bias to the least-squares fit of ``old``'s outputs on ``features``
    (the maps the heads read): over every output pixel of every frame, the linear map from the
    small window to what the wide kernel gave. The centre window cannot see the outer ring; the fit
    spends the small kernel's weights where the ring's signal correlates with the window. A ridge
    towards ``head``'s current weights (the centre window) settles what the frames leave open (a
    channel constant over them), so a head whose ring is zero is found exactly."""
    target = old(features).double()  # (N, O, H, W)
    c = head.crop
    window = F.unfold(features.double()[:, :, c : features.shape[2] - c, c : features.shape[3] - c], head.kernel_size,
                      padding=head.padding)  # (N, C k k, H W), rows in the conv weight's order  # fmt: skip
    columns = [window.transpose(1, 2).reshape(-1, window.shape[1])]
    prior = [head.weight.double().reshape(head.out_channels, -1).T]
    if head.bias is not None:
        columns.append(torch.ones(columns[0].shape[0], 1, dtype=torch.float64))
        prior.append(head.bias.double()[None])
    design, prior = torch.cat(columns, 1), torch.cat(prior, 0)
    strength = (RIDGE * design.square().mean(0).sum() / design.shape[1] * design.shape[0]).sqrt()
    eye = torch.eye(design.shape[1], dtype=torch.float64) * strength
    outputs = target.flatten(2).transpose(1, 2).reshape(-1, target.shape[1])
    solution = torch.linalg.lstsq(torch.cat([design, eye]), torch.cat([outputs, strength * prior]), driver="gelsd").solution
    head.weight.copy_(solution[: window.shape[1]].T.reshape(head.weight.shape).to(head.weight.dtype))
    if head.bias is not None:
        head.bias.copy_(solution[-1].to(head.bias.dtype))


def _check_kernel(value: int) -> str | None:
    return None if value >= 1 and value % 2 == 1 else f"must be an odd size of 1 or more (odd kernels keep the grid centred), got {value}"


def head_names(model: nn.Module, which: str) -> tuple[str, ...]:
    """The heads ``which`` names on this model (``both`` on a detector without jacobians: ``kp``)."""
    if which != "both":
        return (which,)
    return tuple(name for name in HEAD_NAMES if name == "kp" or getattr(model, name, None) is not None)


def _heads(model: nn.Module, names: tuple[str, ...], kernel: int, method: str) -> dict[str, nn.Conv2d]:
    """The model's heads ``names``, checked to be plain square convolutions wider than ``kernel``."""
    if not hasattr(model, "predictor") or not isinstance(getattr(model, "kp", None), nn.Conv2d):
        raise CompressbenchError(f"{method}: the model has no keypoint head at .kp; use a keypoint detector such as teacher")
    heads = {}
    for name in names:
        head = getattr(model, name, None)
        if head is None:
            raise CompressbenchError(f"{method}: the model has no {name} head (it estimates no jacobians)")
        if isinstance(head, CroppedConv2d):
            raise CompressbenchError(f"{method}: the {name} head is already {head.kernel_size[0]}x{head.kernel_size[1]}; apply {method} once")
        plain = isinstance(head, nn.Conv2d) and head.kernel_size[0] == head.kernel_size[1] and head.stride == (1, 1) and head.groups == 1
        if not plain:
            raise CompressbenchError(f"{method}: the {name} head is not a plain square convolution (was it quantized earlier in the chain?)")
        if kernel >= head.kernel_size[0]:
            raise CompressbenchError(f"{method}: kernel {kernel} is not smaller than the {name} head's {head.kernel_size[0]}")
        heads[name] = head
    return heads


@register_method
class HeadKernel(CompressionMethod):
    name = "heads"
    summary = (
        "the 7x7 keypoint and jacobian heads as smaller convolutions over the centre-cropped feature map "
        "(same heatmap grid), fitted to the old heads' outputs (recover trains them)"
    )
    options = (
        Option("kernel", int, 5, "the heads' new kernel size (odd, smaller than 7)", check=_check_kernel),
        Option("which", str, "both", "which heads: both, kp or jacobian", choices=WHICH_CHOICES),
        Option("init", str, "fit", "fit: least squares to the old heads' outputs on calibration frames; centre: the "
               "old kernel's centre window; random: PyTorch's default init", choices=INIT_CHOICES),
    )  # fmt: skip
    structural = True

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        kernel = int(options["kernel"])
        old_heads = _heads(model, head_names(model, options["which"]), kernel, self.name)
        original = copy.deepcopy(model).eval()
        model = copy.deepcopy(model).eval()
        report: dict = {"kernel": kernel, "init": options["init"], "heads": {}, "params_before": count_params(original)}
        structure: dict = {"kernel": kernel, "heads": list(old_heads)}
        example = context.frames(FIT_FRAMES) if options["init"] == "fit" else context.example()
        with torch.no_grad():
            feature_map = original.predictor(original.down(example) if hasattr(original, "down") else example)
        for name, old in old_heads.items():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(context.seed)  # the default init draws from the global RNG
                head = build_head(old, kernel).to(dtype=old.weight.dtype, device=old.weight.device)
            kept = initialise_from_centre(head, old) if options["init"] != "random" else None
            if options["init"] == "fit":
                fit_to_old_head(head, old, feature_map)
            with torch.no_grad():
                before, after = old(feature_map), head(feature_map)
            if before.shape != after.shape:  # crop_and_padding guarantees it; keep the contract checked
                raise CompressbenchError(f"{self.name}: the {name} head gives {tuple(after.shape)} where it gave {tuple(before.shape)}")
            setattr(model, name, head)
            report["heads"][name] = {
                "crop": head.crop,
                "padding": head.padding[0],
                "weight_kept": kept,
                "output_relative_error": float((after - before).norm() / before.norm().clamp_min(1e-12)),
            }
        report["params_after"] = count_params(model)
        return StageResult(model, structure, report)

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Put fresh heads of the saved kernel at the saved names (the state dict brings the weights)."""
        try:
            kernel, names = int(structure["kernel"]), tuple(str(n) for n in structure["heads"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CompressbenchError(f"{self.name}: the saved structure is damaged ({exc}); save the variant again") from None
        model = copy.deepcopy(model)
        for name, old in _heads(model, names, kernel, self.name).items():
            setattr(model, name, build_head(old, kernel).to(dtype=old.weight.dtype, device=old.weight.device))
        return model
