"""LEDNet (Wang et al., 2019) scaled to a 64x64 input: no skips between encoder and decoder.

SS-nbt (split-shuffle non-bottleneck): split the channels in two, run each half through two
factorised 3x3 convolutions (the second dilated; one branch starts vertical, the other
horizontal), concatenate, add the input, ReLU, then shuffle the channels so the halves mix.
Encoder: down-samplers to 1/2, 1/4, 1/8 with SS-nbt units after each; the 8x8 map is the
bottleneck. Decoder: an attention pyramid (APN) at 1/8 (a 7x7 / 5x5 / 3x3 stride-2 pyramid
whose merged output weights a 1x1 projection of the features, plus a global-pooling branch),
then three (bilinear x2 -> 3x3 conv) up-samplers, where LEDNet only interpolates.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.models.students.layers import (
    Add,
    AsymmetricPair,
    ChannelShuffle,
    ChannelSplit,
    ConcatChannels,
    ConvBNReLU,
    Downsampler,
    InterpUpsampler,
    Multiply,
    check_width,
    scale_channels,
)

CHANNELS = (24, 48, 96)  # after each down-sampler (the paper: 32, 64, 128)
STAGE_DILATIONS = (
    (1, 1, 1),
    (1, 1),
    (1, 2, 4, 6, 1, 2, 4, 6),  # the paper's (1, 2, 5, 9, 2, 5, 9, 17), capped for an 8x8 map
)
DECODER_CHANNELS = (32, 32, 16)  # APN output, then after each up-sampler but the last
OUT_CHANNELS = 16


class SSnbt(nn.Module):
    """LEDNet's split-shuffle non-bottleneck unit."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        half = channels // 2
        self.split = ChannelSplit(half)
        self.left1 = AsymmetricPair(half, half, 3)
        self.left_relu = nn.ReLU()
        self.left2 = AsymmetricPair(half, half, 3, dilation)
        self.right1 = AsymmetricPair(half, half, 3, vertical_first=False)
        self.right_relu = nn.ReLU()
        self.right2 = AsymmetricPair(half, half, 3, dilation, vertical_first=False)
        self.concat = ConcatChannels()
        self.add = Add()
        self.relu = nn.ReLU()
        self.shuffle = ChannelShuffle(channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.split(x)
        left = self.left2(self.left_relu(self.left1(left)))
        right = self.right2(self.right_relu(self.right1(right)))
        return self.shuffle(self.relu(self.add(self.concat(left, right), x)))


class LEDNetEncoder(nn.Module):
    """(B, C, H, W) -> (B, c3, H/8, W/8)."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for c, dilations in zip(channels, STAGE_DILATIONS, strict=True):
            layers.append(Downsampler(previous, c))
            layers += [SSnbt(c, d) for d in dilations]
            previous = c
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AttentionPyramid(nn.Module):
    """LEDNet's APN on an (H/8) map whose side is divisible by 8.

    A stride-2 pyramid (7x7, 5x5, 3x3) is refined per level and merged coarse to fine with
    nearest x2 up-sampling; the merged map weights a 1x1 projection of the input, and a
    global-average-pooled 1x1 projection is added everywhere (broadcast).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        c = out_channels
        self.project = ConvBNReLU(in_channels, c, 1)
        self.down1 = ConvBNReLU(in_channels, c, 7, stride=2)
        self.down2 = ConvBNReLU(c, c, 5, stride=2)
        self.down3 = ConvBNReLU(c, c, 3, stride=2)
        self.refine1 = ConvBNReLU(c, c, 7)
        self.refine2 = ConvBNReLU(c, c, 5)
        self.refine3 = ConvBNReLU(c, c, 3)
        self.up3 = nn.Upsample(scale_factor=2, mode="nearest")
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge2 = Add()
        self.merge1 = Add()
        self.attend = Multiply()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.global_project = ConvBNReLU(in_channels, c, 1)
        self.add_global = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        merged = self.merge2(self.up3(self.refine3(d3)), self.refine2(d2))
        merged = self.merge1(self.up2(merged), self.refine1(d1))
        attended = self.attend(self.project(x), self.up1(merged))
        return self.add_global(attended, self.global_project(self.pool(x)))


class LEDNetDecoder(nn.Module):
    """(B, c3, H/8, W/8) -> (B, out, H, W): attention pyramid, then learned up-sampling."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        d1, d2, d3 = channels
        self.layers = nn.Sequential(
            AttentionPyramid(in_channels, d1),
            InterpUpsampler(d1, d2),
            InterpUpsampler(d2, d3),
            InterpUpsampler(d3, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LEDNet(nn.Module):
    """LEDNet predictor: (B, C, H, W) -> (B, out_filters, H, W); H, W divisible by 64."""

    profile_label = "encoder_decoder"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.width = check_width(width)
        channels = tuple(scale_channels(c, width) for c in CHANNELS)
        self.out_filters = scale_channels(OUT_CHANNELS, width)
        self.encoder = LEDNetEncoder(in_channels, channels)
        decoder_channels = tuple(scale_channels(c, width) for c in DECODER_CHANNELS)
        self.decoder = LEDNetDecoder(channels[-1], decoder_channels, self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
