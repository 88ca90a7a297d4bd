"""``dsconv``: each 3x3 convolution becomes a depthwise 3x3 then a pointwise 1x1 (MobileNet style).

Train-free initialisation by network decoupling: for input channel c the kernel slice
W[:, c] is a C_out x 9 matrix; its rank-m truncated SVD U_m S_m V_m^T gives m depthwise kernels
(rows of V_m^T) and their pointwise weights (columns of U_m S_m). Because a slice has 9 columns,
multiplier min(C_out, 9) reproduces the convolution exactly; the pointwise convolution has no
spatial extent, so the depthwise conv's zero padding is the original's and borders are exact too.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from compressbench.compression.base import Option
from compressbench.compression.methods import register_method
from compressbench.compression.swaps import ConvSite, ConvSwapMethod, init_option

MAX_MULTIPLIER = 9  # a C_out x 9 slice has rank at most 9


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise 3x3 (C_in -> C_in*m, groups=C_in, no bias) then pointwise 1x1 (C_in*m -> C_out)."""

    def __init__(self, in_channels: int, out_channels: int, multiplier: int, bias: bool = True) -> None:
        hidden = in_channels * multiplier
        super().__init__(
            OrderedDict(
                depthwise=nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1, groups=in_channels, bias=False),
                pointwise=nn.Conv2d(hidden, out_channels, kernel_size=1, bias=bias),
            )
        )
        self.multiplier = multiplier


def _check_multiplier(value: int) -> str | None:
    if value < 1:
        return f"must be at least 1, got {value}"
    if value > MAX_MULTIPLIER:
        return (
            f"must be at most {MAX_MULTIPLIER}, got {value}: each input channel's kernel slice has only 9 columns, "
            f"so multiplier {MAX_MULTIPLIER} already reproduces the convolution exactly"
        )
    return None


@register_method
class DepthwiseSeparable(ConvSwapMethod):
    name = "dsconv"
    summary = "swap each 3x3 conv of the hourglass for depthwise 3x3 + pointwise 1x1 (SVD init, no training)"
    options = (
        Option(
            "multiplier",
            int,
            1,
            "depthwise channels per input channel (1..9); min(C_out, 9) reproduces the conv exactly",
            check=_check_multiplier,
        ),
        init_option(),
    )
    setting_key = "multiplier"
    progress_label = "dsconv: decoupling 3x3 convs"

    def layer_setting(self, site: ConvSite, options: dict) -> int:
        return int(options["multiplier"])

    def build(self, in_channels: int, out_channels: int, setting: int, bias: bool) -> nn.Module:
        return DepthwiseSeparableConv(in_channels, out_channels, setting, bias)

    def initialise(self, pair: nn.Module, conv: nn.Conv2d) -> None:
        out_channels, in_channels = conv.out_channels, conv.in_channels
        m = pair.multiplier
        # (C_in, C_out, 9): one C_out x 9 matrix per input channel; SVD in float64 for exactness.
        slices = conv.weight.detach().double().permute(1, 0, 2, 3).reshape(in_channels, out_channels, 9)
        # When m exceeds the slice rank (C_out < m) the full V completes the depthwise basis; the
        # matching pointwise weights are zero, since those directions carry nothing.
        u, s, vh = torch.linalg.svd(slices, full_matrices=out_channels < m)
        rank = min(m, s.shape[-1])
        depthwise = vh[:, :m, :]  # (C_in, m, 9)
        pointwise = torch.zeros(out_channels, in_channels, m, dtype=torch.float64)
        pointwise[:, :, :rank] = (u[:, :, :rank] * s[:, None, :rank]).permute(1, 0, 2)
        # Depthwise output channel c*m + j belongs to input channel c (groups=C_in).
        pair.depthwise.weight.copy_(depthwise.reshape(in_channels * m, 1, 3, 3))
        pair.pointwise.weight.copy_(pointwise.reshape(out_channels, in_channels * m, 1, 1))
        if conv.bias is not None:
            pair.pointwise.bias.copy_(conv.bias.detach())

    def effective_kernel(self, pair: nn.Module) -> torch.Tensor:
        m = pair.multiplier
        depthwise = pair.depthwise.weight.detach()
        in_channels = depthwise.shape[0] // m
        pointwise = pair.pointwise.weight.detach().reshape(-1, in_channels, m)
        kernel = torch.einsum("ncm,cmk->nck", pointwise, depthwise.reshape(in_channels, m, 9))
        return kernel.reshape(-1, in_channels, 3, 3)
