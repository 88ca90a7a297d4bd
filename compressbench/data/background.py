"""Image-space backdrop (smooth colour noise plus stripes), lighting gradient and sensor noise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from compressbench.data.params import ParamSpace
from compressbench.data.resample import upsample
from compressbench.data.warps import pixel_centres

BACKGROUND = ParamSpace.of(
    base_r=(0.1, 0.9),
    base_g=(0.1, 0.9),
    base_b=(0.1, 0.9),
    coarse_amp=(0.1, 0.4),
    fine_amp=(0.0, 0.12),
    stripe_angle=(0, math.pi),
    stripe_freq=(2, 12),
    stripe_phase=(0, 2 * math.pi),
    stripe_amp=(0.0, 0.15),
    stripe_r=(0, 1),
    stripe_g=(0, 1),
    stripe_b=(0, 1),
)
LIGHTING = ParamSpace.of(brightness=(0.8, 1.1), light_x=(-0.25, 0.25), light_y=(-0.25, 0.25), noise=(0.003, 0.03))
COARSE, FINE = 4, 16
GRID_VALUES = 3 * COARSE * COARSE + 3 * FINE * FINE  # raw unit values that shape the colour noise
_LATTICE = 32


def _column(value: torch.Tensor) -> torch.Tensor:
    return value[:, None, None, None]


def render_background(params: dict[str, torch.Tensor], grids: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, size, size) backdrop from decoded ``params`` and (B, GRID_VALUES) unit noise values."""
    batch = grids.shape[0]
    split = 3 * COARSE * COARSE
    coarse = grids[:, :split].reshape(batch, 3, COARSE, COARSE) - 0.5
    fine = grids[:, split:].reshape(batch, 3, FINE, FINE) - 0.5
    # both noise octaves meet on a small lattice, so only one full-size interpolation is paid
    lattice = min(_LATTICE, size)
    noise = _column(params["coarse_amp"]) * F.interpolate(coarse, size=lattice, mode="bicubic", align_corners=False)
    noise = noise + _column(params["fine_amp"]) * F.interpolate(
        fine, size=lattice, mode="bilinear", align_corners=False
    )
    base = torch.stack([params["base_r"], params["base_g"], params["base_b"]], -1)[:, :, None, None]
    image = base + upsample(noise, size)
    # sin(a x + b y + c) = sin(a x) cos(b y + c) + cos(a x) sin(b y + c): two separable factors
    axis = pixel_centres(size)
    omega = math.pi * params["stripe_freq"]
    ax = (omega * torch.cos(params["stripe_angle"]))[:, None] * axis
    by = (omega * torch.sin(params["stripe_angle"]))[:, None] * axis + params["stripe_phase"][:, None]
    wave = (
        torch.sin(ax)[:, None, None, :] * torch.cos(by)[:, None, :, None]
        + torch.cos(ax)[:, None, None, :] * torch.sin(by)[:, None, :, None]
    )
    stripe_colour = torch.stack([params["stripe_r"], params["stripe_g"], params["stripe_b"]], -1)[:, :, None, None]
    return image + wave * (_column(params["stripe_amp"]) * (stripe_colour - 0.5))


def apply_lighting(images: torch.Tensor, params: dict[str, torch.Tensor], noise_seeds: list[int]) -> torch.Tensor:
    """Multiply by a linear light gradient, add per-frame grey Gaussian noise, clamp to [0, 1]."""
    size = images.shape[-1]
    axis = pixel_centres(size)
    x, y = axis.view(1, 1, 1, -1), axis.view(1, 1, -1, 1)
    gain = _column(params["brightness"]) + _column(params["light_x"]) * x + _column(params["light_y"]) * y
    noise = torch.stack([torch.randn(1, size, size, generator=torch.Generator().manual_seed(s)) for s in noise_seeds])
    return (images * gain + _column(params["noise"]) * noise).clamp_(0, 1)
