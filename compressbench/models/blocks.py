"""FOMM's hourglass building blocks, with every operation a module.

Parameter and buffer names match FOMM's ``modules/util.py`` exactly (``conv``, ``norm``,
``down_blocks``, ``up_blocks``); the extra modules (``relu``, ``pool``, ``upsample``,
``concats``) hold no state, so state dicts are interchangeable with FOMM's. Making ReLU,
interpolation and concatenation modules lets the profiler time them in place.
"""

from __future__ import annotations

import torch
from torch import nn


class Concat(nn.Module):
    """Concatenate a decoder output with its encoder skip along channels."""

    def forward(self, out: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([out, skip], dim=1)


class DownBlock2d(nn.Module):
    """conv3x3 -> BatchNorm -> ReLU -> AvgPool2d(2)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.norm(self.conv(x))))


class UpBlock2d(nn.Module):
    """nearest x2 -> conv3x3 -> BatchNorm -> ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(self.upsample(x))))


def encoder_channels(block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> list[int]:
    """Channel widths FOMM's encoder produces: input, then one per down block."""
    return [in_features] + [min(max_features, block_expansion * (2 ** (i + 1))) for i in range(num_blocks)]


class Encoder(nn.Module):
    """FOMM's hourglass encoder; returns the input and every down block's output (the skips)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        widths = encoder_channels(block_expansion, in_features, num_blocks, max_features)
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1]) for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for down_block in self.down_blocks:
            outs.append(down_block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """FOMM's hourglass decoder; each up block's output is concatenated with its skip."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        up_blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * (2 ** (i + 1)))
            out_filters = min(max_features, block_expansion * (2**i))
            up_blocks.append(UpBlock2d(in_filters, out_filters))
        self.up_blocks = nn.ModuleList(up_blocks)
        self.concats = nn.ModuleList(Concat() for _ in range(num_blocks))
        self.out_filters = block_expansion + in_features

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        skips = list(x)
        out = skips.pop()
        for up_block, concat in zip(self.up_blocks, self.concats):
            out = concat(up_block(out), skips.pop())
        return out


class Hourglass(nn.Module):
    """FOMM's U-Net: encoder, decoder, concatenation skips; output has ``out_filters`` channels."""

    profile_label = "hourglass"

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
