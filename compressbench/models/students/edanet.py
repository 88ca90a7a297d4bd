"""EDANet (Lo et al., 2018) scaled to a 64x64 input, with a learned decoder and no skips.

EDA module: 1x1 conv to ``growth`` channels, two factorised 3x3 convolutions (the second
dilated), and the result concatenated onto the module's input (dense connectivity), so each
module adds ``growth`` channels. Encoder: two down-samplers (64 -> 32 -> 16), an EDA block, a
channel-halving down-sampler (-> 8), a dilated EDA block; the 8x8 map is the bottleneck.
EDANet itself ends in a 1x1 conv and bilinear x8; here the decoder learns instead: a 1x1
projection, then three (bilinear x2 -> 3x3 conv) up-samplers.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.models.students.layers import (
    AsymmetricPair,
    ConcatChannels,
    ConvBNReLU,
    Downsampler,
    InterpUpsampler,
    check_width,
    scale_channels,
)

STEM_CHANNELS = (16, 48)  # after the two first down-samplers (the paper: 15, 60)
GROWTH = 24  # the paper: 40
BLOCK1_DILATIONS = (1, 1, 1, 2, 2)
BLOCK2_DILATIONS = (2, 2, 4, 4, 6, 6, 2, 2)  # the paper's (2, 2, 4, 4, 8, 8, 16, 16), capped for an 8x8 map
DECODER_CHANNELS = (64, 32, 16)  # projection at 1/8, then after each up-sampler but the last
OUT_CHANNELS = 16


class EDAModule(nn.Module):
    """1x1 -> factorised 3x3 -> ReLU -> dilated factorised 3x3 -> ReLU, concatenated to the input."""

    def __init__(self, in_channels: int, growth: int, dilation: int) -> None:
        super().__init__()
        self.reduce = ConvBNReLU(in_channels, growth, 1)
        self.pair1 = AsymmetricPair(growth, growth, 3)
        self.relu1 = nn.ReLU()
        self.pair2 = AsymmetricPair(growth, growth, 3, dilation)
        self.relu2 = nn.ReLU()
        self.concat = ConcatChannels()
        self.out_channels = in_channels + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu2(self.pair2(self.relu1(self.pair1(self.reduce(x)))))
        return self.concat(out, x)


def eda_block(in_channels: int, growth: int, dilations: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """Dense EDA modules; returns the block and its output channels."""
    modules = []
    channels = in_channels
    for d in dilations:
        modules.append(EDAModule(channels, growth, d))
        channels += growth
    return nn.Sequential(*modules), channels


class EDANetEncoder(nn.Module):
    """(B, C, H, W) -> (B, c, H/8, W/8)."""

    def __init__(self, in_channels: int, c1: int, c2: int, growth: int) -> None:
        super().__init__()
        block1, after_block1 = eda_block(c2, growth, BLOCK1_DILATIONS)
        reduced = scale_channels(after_block1 // 2, 1.0)  # EDANet halves the channels here (to a multiple of 4)
        block2, self.out_channels = eda_block(reduced, growth, BLOCK2_DILATIONS)
        self.layers = nn.Sequential(
            Downsampler(in_channels, c1), Downsampler(c1, c2), block1, Downsampler(after_block1, reduced), block2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EDANetDecoder(nn.Module):
    """(B, c, H/8, W/8) -> (B, out, H, W): 1x1 projection, three bilinear x2 -> conv up-samplers."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        d1, d2, d3 = channels
        self.layers = nn.Sequential(
            ConvBNReLU(in_channels, d1, 1),
            InterpUpsampler(d1, d2),
            InterpUpsampler(d2, d3),
            InterpUpsampler(d3, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EDANet(nn.Module):
    """EDANet predictor: (B, C, H, W) -> (B, out_filters, H, W); H, W divisible by 8."""

    profile_label = "encoder_decoder"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.width = check_width(width)
        c1, c2 = (scale_channels(c, width) for c in STEM_CHANNELS)
        self.out_filters = scale_channels(OUT_CHANNELS, width)
        self.encoder = EDANetEncoder(in_channels, c1, c2, scale_channels(GROWTH, width))
        decoder_channels = tuple(scale_channels(c, width) for c in DECODER_CHANNELS)
        self.decoder = EDANetDecoder(self.encoder.out_channels, decoder_channels, self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
