"""ERFNet (Romera et al., 2017) scaled to a 64x64 input: no skips between encoder and decoder.

Encoder: two ENet down-samplers (64 -> 32 -> 16), non-bottleneck-1D blocks, a third
down-sampler (-> 8) and dilated non-bottleneck-1D blocks; the 8x8 map is the bottleneck.
Decoder: transposed-conv up-samplers with non-bottleneck-1D blocks in between, and a final 2x2
transposed conv back to full resolution. The paper's dilations (2, 4, 8, 16) are for a 64x128
map; on an 8x8 map they are capped below the map's side.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.models.students.layers import (
    Downsampler,
    NonBottleneck1D,
    check_width,
    scale_channels,
    transposed_nb1d_decoder,
)

CHANNELS = (16, 32, 64)  # after each down-sampler (the paper: 16, 64, 128)
MID_BLOCKS = 5
DILATIONS = (1, 2, 4, 6, 1, 2, 4, 6)
DECODER_BLOCKS = 2
OUT_CHANNELS = 16


class ERFNetEncoder(nn.Module):
    """(B, C, H, W) -> (B, c3, H/8, W/8)."""

    def __init__(self, in_channels: int, c1: int, c2: int, c3: int) -> None:
        super().__init__()
        layers = [Downsampler(in_channels, c1), Downsampler(c1, c2)]
        layers += [NonBottleneck1D(c2) for _ in range(MID_BLOCKS)]
        layers.append(Downsampler(c2, c3))
        layers += [NonBottleneck1D(c3, dilation=d) for d in DILATIONS]
        self.layers = nn.Sequential(*layers)
        self.out_channels = c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ERFNetDecoder(nn.Module):
    """(B, c3, H/8, W/8) -> (B, out, H, W): up-samplers with non-bottleneck-1D blocks."""

    def __init__(self, c1: int, c2: int, c3: int, out_channels: int) -> None:
        super().__init__()
        self.layers = transposed_nb1d_decoder(c1, c2, c3, out_channels, DECODER_BLOCKS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ERFNet(nn.Module):
    """ERFNet predictor: (B, C, H, W) -> (B, out_filters, H, W); H, W divisible by 8."""

    profile_label = "encoder_decoder"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.width = check_width(width)
        c1, c2, c3 = (scale_channels(c, width) for c in CHANNELS)
        self.out_filters = scale_channels(OUT_CHANNELS, width)
        self.encoder = ERFNetEncoder(in_channels, c1, c2, c3)
        self.decoder = ERFNetDecoder(c1, c2, c3, self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
