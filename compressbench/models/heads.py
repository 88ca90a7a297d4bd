"""The parts of FOMM's keypoint detector around the predictor: anti-alias down-sampling,
heatmap softmax, soft-argmax (FOMM's ``gaussian2kp``) and heatmap-weighted jacobians."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_kernel(scale: float) -> torch.Tensor:
    """FOMM's anti-alias kernel for down-sampling by ``scale``: a normalised 2-D Gaussian,
    sigma = (1/scale - 1)/2, size 2*round(4*sigma)+1."""
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    one_d = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = one_d[:, None] * one_d[None, :]
    return kernel / kernel.sum()


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur, then nearest down-sampling (FOMM). Its buffer is FOMM's ``down.weight``."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        kernel = gaussian_kernel(scale)
        size = kernel.shape[0]
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight, groups=self.groups)
        return F.interpolate(out, scale_factor=(self.scale, self.scale))


def coordinate_grid(height: int, width: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1], x along the width, as FOMM's make_coordinate_grid."""
    x = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
    y = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
    return torch.stack([x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)], dim=-1)


class SpatialSoftmax(nn.Module):
    """Softmax over each heatmap's pixels with a temperature (0.1 in FOMM: sharp peaks)."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, prediction: torch.Tensor) -> torch.Tensor:
        b, k, h, w = prediction.shape
        heatmap = F.softmax(prediction.reshape(b, k, h * w) / self.temperature, dim=2)
        return heatmap.view(b, k, h, w)


class SoftArgmax(nn.Module):
    """Expected (x, y) of each normalised heatmap, in [-1, 1] (FOMM's gaussian2kp)."""

    def forward(self, heatmap: torch.Tensor) -> torch.Tensor:
        grid = coordinate_grid(heatmap.shape[2], heatmap.shape[3], heatmap.dtype, heatmap.device)
        return (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))


class HeatmapWeightedJacobian(nn.Module):
    """Pool 4 jacobian maps per keypoint with that keypoint's heatmap into a 2x2 matrix."""

    def __init__(self, num_jacobian_maps: int) -> None:
        super().__init__()
        self.num_jacobian_maps = num_jacobian_maps

    def forward(self, heatmap: torch.Tensor, jacobian_map: torch.Tensor) -> torch.Tensor:
        b, k, h, w = heatmap.shape
        jacobian_map = jacobian_map.reshape(b, self.num_jacobian_maps, 4, h, w)
        jacobian = (heatmap.unsqueeze(2) * jacobian_map).view(b, k, 4, -1).sum(dim=-1)
        return jacobian.view(b, k, 2, 2)
