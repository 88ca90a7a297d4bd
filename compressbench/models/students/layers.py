"""Building blocks shared by the student predictors.

Every operation is a module (ReLU, pooling, up-sampling, addition, concatenation, channel
split and shuffle) so the per-layer profiler can time it in place, and nothing branches on
tensor values, so FX tracing, ONNX export and quantization see one static graph. A convolution
directly followed by BatchNorm has no bias (the norm's shift makes it redundant).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from compressbench.errors import CompressbenchError

CHANNEL_DIVISOR = 4  # widths stay multiples of 4: even splits and 2-group shuffles always work


def check_width(width: float) -> float:
    """``width`` as a float, or a clear error when it is not a positive finite number."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
        raise CompressbenchError(f"student width must be a positive number (1.0 is the default size), got {width!r}")
    return float(width)


def scale_channels(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """``channels * width`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(round(channels * width / divisor)) * divisor)


class Add(nn.Module):
    """Element-wise sum (broadcasting), e.g. a residual connection."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Multiply(nn.Module):
    """Element-wise product, e.g. features weighted by an attention map."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class ConcatChannels(nn.Module):
    """Concatenate any number of feature maps along channels."""

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(tensors, dim=1)


class ChannelSplit(nn.Module):
    """Split a feature map into its first ``first`` channels and the rest."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.first = first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, : self.first], x[:, self.first :]


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: interleave ``groups`` groups of channels.

    Written with unflatten/transpose/flatten on the (fixed) channel axis only, so the graph has
    no shape arithmetic on the batch or spatial sizes.
    """

    def __init__(self, channels: int, groups: int = 2) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"channel shuffle needs channels ({channels}) divisible by groups ({groups})")
        self.groups = groups
        self.per_group = channels // groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, self.per_group)).transpose(1, 2).flatten(1, 2)


class ConvBNReLU(nn.Module):
    """conv (no bias) -> BatchNorm -> ReLU; ``padding`` defaults to 'same' for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if padding is None:
            padding = (dilation * (kh // 2), dilation * (kw // 2))
        self.conv = nn.Conv2d(in_channels, out_channels, (kh, kw), stride, padding, dilation, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(x)))


def vertical(channels_in: int, channels_out: int, k: int, dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    """A k x 1 convolution keeping the spatial size."""
    return nn.Conv2d(
        channels_in, channels_out, (k, 1), padding=(dilation * (k // 2), 0), dilation=(dilation, 1), bias=bias
    )


def horizontal(channels_in: int, channels_out: int, k: int, dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 1 x k convolution keeping the spatial size."""
    return nn.Conv2d(
        channels_in, channels_out, (1, k), padding=(0, dilation * (k // 2)), dilation=(1, dilation), bias=bias
    )


class AsymmetricPair(nn.Module):
    """A k x k convolution factorised as k x 1 -> ReLU -> 1 x k -> BatchNorm (no final ReLU).

    ``vertical_first=False`` runs 1 x k first (LEDNet's second branch).
    """

    def __init__(
        self, in_channels: int, out_channels: int, k: int = 3, dilation: int = 1, vertical_first: bool = True
    ) -> None:
        super().__init__()
        first, second = (vertical, horizontal) if vertical_first else (horizontal, vertical)
        self.conv1 = first(in_channels, out_channels, k, dilation, bias=True)
        self.relu = nn.ReLU()
        self.conv2 = second(out_channels, out_channels, k, dilation, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv2(self.relu(self.conv1(x))))


class NonBottleneck1D(nn.Module):
    """ERFNet's non-bottleneck-1D residual block (ESNet's FCU when ``dilation`` is 1).

    Two factorised k x k convolutions, the second dilated, then the residual sum and ReLU.
    """

    def __init__(self, channels: int, k: int = 3, dilation: int = 1) -> None:
        super().__init__()
        self.pair1 = AsymmetricPair(channels, channels, k)
        self.relu1 = nn.ReLU()
        self.pair2 = AsymmetricPair(channels, channels, k, dilation)
        self.add = Add()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.add(self.pair2(self.relu1(self.pair1(x))), x))


class Downsampler(nn.Module):
    """ENet/ERFNet down-sampling: [3x3 stride-2 conv, 2x2 max-pool] concatenated -> BN -> ReLU.

    The conv gives ``out - in`` channels and the pool passes the ``in`` channels through; when
    ``out <= in`` (EDANet's channel-reducing step) only the conv runs, with all ``out`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.with_pool = out_channels > in_channels
        conv_out = out_channels - in_channels if self.with_pool else out_channels
        self.conv = nn.Conv2d(in_channels, conv_out, 3, stride=2, padding=1, bias=False)
        if self.with_pool:
            self.pool = nn.MaxPool2d(2)
            self.concat = ConcatChannels()
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.with_pool:  # fixed at construction: one static graph
            out = self.concat(out, self.pool(x))
        return self.relu(self.norm(out))


class TransposedUpsampler(nn.Module):
    """x2 learned up-sampling: transposed conv (3x3, or 2x2 non-overlapping) -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size not in (2, 3):
            raise ValueError(f"kernel_size must be 2 or 3, got {kernel_size}")
        padding = 1 if kernel_size == 3 else 0
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=2, padding=padding, output_padding=padding, bias=False
        )
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(x)))


class InterpUpsampler(nn.Module):
    """x2 interpolation, then a 3x3 conv -> BN -> ReLU that learns to refine it."""

    def __init__(self, in_channels: int, out_channels: int, mode: str = "bilinear") -> None:
        super().__init__()
        align = False if mode in ("bilinear", "bicubic") else None
        self.upsample = nn.Upsample(scale_factor=2, mode=mode, align_corners=align)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(self.upsample(x))))


def transposed_nb1d_decoder(c1: int, c2: int, c3: int, out_channels: int, blocks: int, k1: int = 3, k2: int = 3) -> nn.Sequential:
    """ERFNet/ESNet's decoder: up-sample c3 -> c2, ``blocks`` non-bottleneck-1D blocks, up-sample to
    c1, ``blocks`` more, then a last transposed-conv up-sampling to ``out_channels`` (x8 in all)."""
    layers: list[nn.Module] = [TransposedUpsampler(c3, c2)]
    layers += [NonBottleneck1D(c2, k2) for _ in range(blocks)]
    layers.append(TransposedUpsampler(c2, c1))
    layers += [NonBottleneck1D(c1, k1) for _ in range(blocks)]
    layers.append(TransposedUpsampler(c1, out_channels, kernel_size=2))
    return nn.Sequential(*layers)
