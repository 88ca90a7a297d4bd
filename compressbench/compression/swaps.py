"""Shared machinery of the convolution swaps (``dsconv``, ``asym``).

A swap replaces every plain 3x3 convolution of a detector's predictor by a cheaper pair of
convolutions, initialised either in closed form from the original kernel (``init=svd``) or by
PyTorch's defaults (``init=random``). Each pair is linear, so it has an *effective* 3x3 kernel;
its distance to the original kernel is the per-layer approximation error we report.

Subclasses of :class:`ConvSwapMethod` say only what is specific to them: the per-layer setting
(rank or multiplier), how to build the pair, how to initialise it from the original kernel, and
how to read its effective kernel back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult, replace_submodule
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import count_params
from compressbench.progress import progress_bar

INIT_CHOICES = ("svd", "random")


def init_option() -> Option:
    return Option(
        "init",
        str,
        "svd",
        "svd: closed-form initialisation from the original kernel (no training); random: PyTorch's default init",
        choices=INIT_CHOICES,
    )


@dataclass(frozen=True)
class ConvSite:
    """A convolution that can be swapped: its dotted name from the model root and the module."""

    name: str
    conv: nn.Conv2d

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    @property
    def label(self) -> str:
        return f"{self.name} ({self.in_channels}->{self.out_channels} channels)"


def is_swappable(module: nn.Module) -> bool:
    """A plain dense 3x3 convolution with 'same' zero padding and stride 1.

    The exact type is required: subclasses of Conv2d (QAT, fused or quantized variants) carry
    extra behaviour that a pair of plain convolutions would silently drop.
    """
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.padding == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


def predictor_of(model: nn.Module, method: str) -> nn.Module:
    predictor = getattr(model, "predictor", None)
    if not isinstance(predictor, nn.Module):
        raise CompressbenchError(
            f"{method}: the model has no .predictor module to swap convolutions in; use a keypoint detector (e.g. teacher)"
        )
    return predictor


def find_3x3_convs(model: nn.Module, method: str) -> list[ConvSite]:
    """Every swappable 3x3 convolution inside ``model.predictor``, in module order.

    The 7x7 heads (``kp``, ``jacobian``) and the anti-alias filter live outside the predictor and
    are never touched.
    """
    predictor = predictor_of(model, method)
    sites = [ConvSite(f"predictor.{name}", m) for name, m in predictor.named_modules() if is_swappable(m)]
    if not sites:
        raise CompressbenchError(
            f"{method}: the predictor has no plain 3x3 stride-1 convolutions to swap "
            "(was it already swapped or quantized earlier in the chain?)"
        )
    return sites


def relative_error(approx: torch.Tensor, reference: torch.Tensor) -> float:
    """||approx - reference||_F / ||reference||_F (in float64)."""
    reference = reference.detach().double()
    denominator = torch.linalg.vector_norm(reference).item()
    difference = torch.linalg.vector_norm(approx.detach().double() - reference).item()
    return difference / denominator if denominator > 0 else difference


def conv_params(in_channels: int, out_channels: int, bias: bool) -> int:
    """Parameters of a dense 3x3 convolution."""
    return 9 * in_channels * out_channels + (out_channels if bias else 0)


class ConvSwapMethod(CompressionMethod):
    """A compression method that swaps each 3x3 convolution of the predictor for a cheaper pair."""

    structural = True

    setting_key: str = ""  # the per-layer setting saved in ``structure`` ("rank", "multiplier")
    progress_label: str = ""

    # --- what a subclass provides -------------------------------------------------------------
    def check_options(self, options: dict) -> None:
        """Raise CompressbenchError for option combinations a single Option cannot judge."""

    def layer_setting(self, site: ConvSite, options: dict) -> int:
        """The rank / multiplier this layer gets; raise CompressbenchError naming the layer if impossible."""
        raise NotImplementedError

    def build(self, in_channels: int, out_channels: int, setting: int, bias: bool) -> nn.Module:
        """A fresh pair (PyTorch default init) with the given shapes."""
        raise NotImplementedError

    def initialise(self, pair: nn.Module, conv: nn.Conv2d) -> None:
        """Closed-form weights for ``pair`` from ``conv``'s kernel and bias (in place)."""
        raise NotImplementedError

    def effective_kernel(self, pair: nn.Module) -> torch.Tensor:
        """The (C_out, C_in, 3, 3) kernel of the single convolution equal to ``pair``."""
        raise NotImplementedError

    # --- the shared method ----------------------------------------------------------------------
    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        self.check_options(options)
        model = copy.deepcopy(model)
        params_before = count_params(model)
        sites = find_3x3_convs(model, self.name)
        # Validate every layer before doing any work, so a bad rank fails fast.
        settings = [self.layer_setting(site, options) for site in sites]
        layers = []
        # PyTorch's default init draws from the global RNG: seed a forked copy so runs repeat
        # and the caller's RNG state is left alone.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(context.seed)
            with progress_bar(self.progress_label or self.name, len(sites), context.show_progress) as advance:
                for site, setting in zip(sites, settings):
                    pair = self.build(site.in_channels, site.out_channels, setting, site.conv.bias is not None)
                    pair.to(dtype=site.conv.weight.dtype, device=site.conv.weight.device)
                    if options["init"] == "svd":
                        self.initialise(pair, site.conv)
                    error = relative_error(self.effective_kernel(pair), site.conv.weight)
                    replace_submodule(model, site.name, pair)
                    layers.append(self._layer_report(site, setting, pair, error))
                    advance()
        structure = {
            "layers": [
                {
                    "name": site.name,
                    "in_channels": site.in_channels,
                    "out_channels": site.out_channels,
                    "bias": site.conv.bias is not None,
                    self.setting_key: setting,
                }
                for site, setting in zip(sites, settings)
            ]
        }
        errors = [layer["relative_error"] for layer in layers]
        before = sum(layer["params_before"] for layer in layers)
        after = sum(layer["params_after"] for layer in layers)
        report = {
            "init": options["init"],
            "layers": layers,
            "swapped_layers": len(layers),
            "swapped_params_before": before,
            "swapped_params_after": after,
            "params_before": params_before,
            "params_after": count_params(model),
            "params_change": count_params(model) / params_before - 1.0,
            "mean_relative_error": sum(errors) / len(errors),
            "max_relative_error": max(errors),
        }
        return StageResult(model, structure, report)

    def _layer_report(self, site: ConvSite, setting: int, pair: nn.Module, error: float) -> dict:
        return {
            "name": site.name,
            "in_channels": site.in_channels,
            "out_channels": site.out_channels,
            self.setting_key: setting,
            "params_before": count_params(site.conv),
            "params_after": count_params(pair),
            "relative_error": error,
        }

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        model = copy.deepcopy(model)
        layers = structure.get("layers")
        if not layers:
            raise CompressbenchError(f"{self.name}: the saved structure lists no swapped layers; the file is damaged")
        for layer in layers:
            name = layer["name"]
            try:
                conv = model.get_submodule(name)
            except AttributeError:
                conv = None
            if (
                not is_swappable(conv)
                or conv.in_channels != layer["in_channels"]
                or conv.out_channels != layer["out_channels"]
            ):
                raise CompressbenchError(
                    f"{self.name}: saved layer {name} ({layer['in_channels']}->{layer['out_channels']} channels) "
                    "does not match a 3x3 convolution of the base model; the file belongs to another model"
                )
            pair = self.build(
                layer["in_channels"], layer["out_channels"], int(layer[self.setting_key]), bool(layer["bias"])
            )
            replace_submodule(model, name, pair.to(dtype=conv.weight.dtype, device=conv.weight.device))
        return model
