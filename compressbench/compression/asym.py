"""``asym``: each 3x3 convolution becomes a 3x1 convolution (C_in -> r) then a 1x3 (r -> C_out).

Train-free initialisation after Tai et al. (ICLR 2016): the kernel W (C_out, C_in, 3, 3) is
rearranged into the (3 C_in) x (3 C_out) matrix M[(c, kh), (kw, n)] = W[n, c, kh, kw], whose
rank-r truncated SVD U_r S_r V_r^T gives the vertical kernels (U_r sqrt(S_r)) and the horizontal
ones (sqrt(S_r) V_r^T). Full rank r = 3 min(C_in, C_out) reproduces the convolution exactly.

Borders are exact too: the 3x1 pads rows only, so its output keeps every column, and the 1x3
then pads columns only. A column the 1x3 reads from outside the map is zero, exactly as the
3x3's padded input columns are, because the 3x1 has no bias (a bias there would put a nonzero
value where the original sees zero padding; the bias lives on the 1x3 instead).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from compressbench.compression.base import Option
from compressbench.compression.methods import register_method
from compressbench.compression.swaps import ConvSite, ConvSwapMethod, init_option
from compressbench.errors import CompressbenchError


class AsymmetricConv(nn.Sequential):
    """A 3x1 convolution (C_in -> rank, no bias) then a 1x3 convolution (rank -> C_out)."""

    def __init__(self, in_channels: int, out_channels: int, rank: int, bias: bool = True) -> None:
        super().__init__(
            OrderedDict(
                vertical=nn.Conv2d(in_channels, rank, kernel_size=(3, 1), padding=(1, 0), bias=False),
                horizontal=nn.Conv2d(rank, out_channels, kernel_size=(1, 3), padding=(0, 1), bias=bias),
            )
        )
        self.rank = rank


def full_rank(in_channels: int, out_channels: int) -> int:
    """Rank of the (3 C_in) x (3 C_out) kernel matrix at most; this rank makes the swap exact."""
    return 3 * min(in_channels, out_channels)


def rank_from_ratio(ratio: float, maximum: int) -> int:
    """ceil(ratio * maximum), at least 1; the tolerance keeps e.g. (1/3) * 3C at C, not C + 1."""
    return max(1, math.ceil(ratio * maximum - 1e-9))


def _check_rank(value: int) -> str | None:
    return f"must be at least 1, got {value}" if value < 1 else None


def _check_ratio(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be in (0, 1], got {value}"


@register_method
class Asymmetric(ConvSwapMethod):
    name = "asym"
    summary = "swap each 3x3 conv of the hourglass for a 3x1 + 1x3 pair (Tai et al. SVD init, no training)"
    options = (
        Option(
            "rank",
            int,
            None,
            "channels between the 3x1 and the 1x3 in every layer (default: min(C_in, C_out), the seed's "
            "ERFNet-style pair); must not exceed a layer's full rank 3*min(C_in, C_out)",
            check=_check_rank,
        ),
        Option(
            "rank_ratio",
            float,
            None,
            "alternative to rank: each layer gets ceil(ratio * 3*min(C_in, C_out)); 1 reproduces the conv exactly",
            check=_check_ratio,
        ),
        init_option(),
    )
    setting_key = "rank"
    progress_label = "asym: factorising 3x3 convs"

    def check_options(self, options: dict) -> None:
        if options.get("rank") is not None and options.get("rank_ratio") is not None:
            raise CompressbenchError("asym: give either rank or rank_ratio, not both")

    def layer_setting(self, site: ConvSite, options: dict) -> int:
        maximum = full_rank(site.in_channels, site.out_channels)
        if options.get("rank_ratio") is not None:
            return rank_from_ratio(options["rank_ratio"], maximum)
        rank = options.get("rank")
        if rank is None:
            return min(site.in_channels, site.out_channels)
        if rank > maximum:
            raise CompressbenchError(
                f"asym: rank {rank} exceeds the full rank {maximum} of {site.label}; "
                f"give a rank of at most {maximum}, or use rank_ratio"
            )
        return rank

    def build(self, in_channels: int, out_channels: int, setting: int, bias: bool) -> nn.Module:
        return AsymmetricConv(in_channels, out_channels, setting, bias)

    def initialise(self, pair: nn.Module, conv: nn.Conv2d) -> None:
        out_channels, in_channels = conv.out_channels, conv.in_channels
        rank = pair.rank
        # M[(c, kh), (kw, n)] = W[n, c, kh, kw]; SVD in float64 so full rank is exact to float32.
        matrix = conv.weight.detach().double().permute(1, 2, 3, 0).reshape(3 * in_channels, 3 * out_channels)
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        root = s[:rank].sqrt()
        vertical = u[:, :rank] * root  # ((c, kh), k)
        horizontal = root[:, None] * vh[:rank]  # (k, (kw, n))
        pair.vertical.weight.copy_(vertical.T.reshape(rank, in_channels, 3, 1))
        pair.horizontal.weight.copy_(
            horizontal.reshape(rank, 3, out_channels).permute(2, 0, 1).reshape(out_channels, rank, 1, 3)
        )
        if conv.bias is not None:
            pair.horizontal.bias.copy_(conv.bias.detach())

    def effective_kernel(self, pair: nn.Module) -> torch.Tensor:
        vertical = pair.vertical.weight.detach()[..., 0]  # (k, c, kh)
        horizontal = pair.horizontal.weight.detach()[:, :, 0, :]  # (n, k, kw)
        return torch.einsum("kch,nkw->nchw", vertical, horizontal)
