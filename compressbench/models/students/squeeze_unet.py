"""Squeeze U-Net: a U-Net whose blocks are SqueezeNet fire modules (seed 001).

At 64x64 input the encoder ends in a 512x4x4 bottleneck (the teacher's is 1024x2x2): a stem
at full resolution, then four stages of (2x2 max-pool, fire, fire). The decoder mirrors it:
nearest x2 up-sampling, concatenation with the encoder's skip at that resolution, a fire module.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.models.students.layers import ConcatChannels, ConvBNReLU, check_width, scale_channels

STEM_CHANNELS = 32
# (output channels, squeeze channels) of each encoder stage; squeeze ratio 1/4 of the output.
ENCODER_STAGES = ((64, 16), (128, 32), (256, 64), (512, 128))
FIRES_PER_STAGE = 2
OUT_CHANNELS = 16
SQUEEZE_RATIO = 4  # decoder fires squeeze to a quarter of their skip's channels, like the encoder's


class Fire(nn.Module):
    """SqueezeNet's fire module: 1x1 squeeze -> [1x1 expand, 3x3 expand] concatenated.

    Each half of the output comes from one expand branch; BatchNorm follows the squeeze and the
    concatenated expands.
    """

    def __init__(self, in_channels: int, squeeze: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"a fire module needs an even number of output channels, got {out_channels}")
        self.squeeze = ConvBNReLU(in_channels, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, out_channels // 2, 1, bias=False)
        self.expand3x3 = nn.Conv2d(squeeze, out_channels // 2, 3, padding=1, bias=False)
        self.concat = ConcatChannels()
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return self.relu(self.norm(self.concat(self.expand1x1(s), self.expand3x3(s))))


class SqueezeEncoder(nn.Module):
    """Stem, then stages of (max-pool, fires); returns every stage's output, bottleneck last."""

    def __init__(self, in_channels: int, stem: int, stages: list[tuple[int, int]]) -> None:
        super().__init__()
        self.stem = ConvBNReLU(in_channels, stem, 3)
        blocks = []
        previous = stem
        for out_channels, squeeze in stages:
            fires = [Fire(previous if i == 0 else out_channels, squeeze, out_channels) for i in range(FIRES_PER_STAGE)]
            blocks.append(nn.Sequential(nn.MaxPool2d(2), *fires))
            previous = out_channels
        self.stages = nn.ModuleList(blocks)
        self.channels = [stem] + [c for c, _ in stages]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [self.stem(x)]
        for stage in self.stages:
            outs.append(stage(outs[-1]))
        return outs


class SqueezeDecoder(nn.Module):
    """Per encoder stage, deepest first: nearest x2 -> concat the skip -> fire."""

    def __init__(self, encoder_channels: list[int], out_channels: int) -> None:
        super().__init__()
        skips = encoder_channels[:-1][::-1]  # resolutions 8, 16, 32, 64 for a 64x64 input
        # each fire gives as many channels as its skip had, the last one the output's
        targets = skips[:-1] + [out_channels]
        self.upsamples = nn.ModuleList(nn.Upsample(scale_factor=2, mode="nearest") for _ in skips)
        self.concats = nn.ModuleList(ConcatChannels() for _ in skips)
        fires = []
        previous = encoder_channels[-1]
        for skip, target in zip(skips, targets, strict=True):
            fires.append(Fire(previous + skip, skip // SQUEEZE_RATIO, target))
            previous = target
        self.fires = nn.ModuleList(fires)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out = features[-1]
        for i, (upsample, concat, fire) in enumerate(zip(self.upsamples, self.concats, self.fires, strict=True)):
            out = fire(concat(upsample(out), features[-2 - i]))
        return out


class SqueezeUNet(nn.Module):
    """Squeeze U-Net predictor: (B, C, H, W) -> (B, out_filters, H, W); H, W divisible by 16."""

    profile_label = "squeeze_unet"

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.width = check_width(width)
        stages = [(scale_channels(c, width), scale_channels(s, width)) for c, s in ENCODER_STAGES]
        self.encoder = SqueezeEncoder(in_channels, scale_channels(STEM_CHANNELS, width), stages)
        self.out_filters = scale_channels(OUT_CHANNELS, width)
        self.decoder = SqueezeDecoder(self.encoder.channels, self.out_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
