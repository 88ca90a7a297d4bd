"""ESNet (Wang et al., 2019) scaled to a 64x64 input: a symmetric encoder-decoder, no skips.

FCU (factorised convolution unit): ERFNet's non-bottleneck-1D without dilation, with a k x k
kernel (3 early, 5 in the middle stage). PFCU (parallel FCU): one factorised 3x3, then three
parallel dilated factorised 3x3 branches, summed with the input. Encoder: down-sampler
(-> 32), FCUs, down-sampler (-> 16), FCUs, down-sampler (-> 8), PFCUs; the 8x8 map is the
bottleneck. Decoder: transposed-conv up-samplers with FCUs between, mirroring the encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.models.students.layers import (
    Add,
    AsymmetricPair,
    Downsampler,
    NonBottleneck1D,
    check_width,
    scale_channels,
    transposed_nb1d_decoder,
)

CHANNELS = (16, 32, 64)  # after each down-sampler (the paper: 16, 64, 128)
STAGE1 = (3, 3)  # (FCU count, kernel) at 1/2 resolution
STAGE2 = (2, 5)  # at 1/4
PFCU_COUNT = 3
PFCU_DILATIONS = (2, 4, 6)  # the paper's (2, 5, 9), capped for an 8x8 map
DECODER_FCUS = 2  # per decoder stage
OUT_CHANNELS = 16


class ParallelFCU(nn.Module):
    """Factorised 3x3 -> ReLU -> sum of dilated factorised 3x3 branches -> + input -> ReLU."""

    def __init__(self, channels: int, dilations: tuple[int, ...] = PFCU_DILATIONS) -> None:
        super().__init__()
        self.pair = AsymmetricPair(channels, channels, 3)
        self.relu1 = nn.ReLU()
        self.branches = nn.ModuleList(AsymmetricPair(channels, channels, 3, d) for d in dilations)
        self.adds = nn.ModuleList(Add() for _ in dilations)  # branch sums, then the residual
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.relu1(self.pair(x))
        out = x
        for branch, add in zip(self.branches, self.adds, strict=True):
            out = add(out, branch(shared))
        return self.relu(out)


class ESNetEncoder(nn.Module):
    """(B, C, H, W) -> (B, c3, H/8, W/8)."""

    def __init__(self, in_channels: int, c1: int, c2: int, c3: int) -> None:
        super().__init__()
        (n1, k1), (n2, k2) = STAGE1, STAGE2
        layers: list[nn.Module] = [Downsampler(in_channels, c1)]
        layers += [NonBottleneck1D(c1, k1) for _ in range(n1)]
        layers.append(Downsampler(c1, c2))
        layers += [NonBottleneck1D(c2, k2) for _ in range(n2)]
        layers.append(Downsampler(c2, c3))
        layers += [ParallelFCU(c3) for _ in range(PFCU_COUNT)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ESNetDecoder(nn.Module):
    """(B, c3, H/8, W/8) -> (B, out, H, W), mirroring the encoder's FCU stages."""

    def __init__(self, c1: int, c2: int, c3: int, out_channels: int) -> None:
        super().__init__()
        k1, k2 = STAGE1[1], STAGE2[1]
        self.layers = transposed_nb1d_decoder(c1, c2, c3, out_channels, DECODER_FCUS, k1, k2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ESNet(nn.Module):
    """ESNet predictor: (B, C, H, W) -> (B, out_filters, H, W); H, W divisible by 8."""

    profile_label = "encoder_decoder"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.width = check_width(width)
        c1, c2, c3 = (scale_channels(c, width) for c in CHANNELS)
        self.out_filters = scale_channels(OUT_CHANNELS, width)
        self.encoder = ESNetEncoder(in_channels, c1, c2, c3)
        self.decoder = ESNetDecoder(c1, c2, c3, self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
