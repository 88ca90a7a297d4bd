"""Random smooth warps of frames and points, for the equivariance losses.

A :class:`Warp` is a batch of transforms T(x) = A x + b + sum_c w_c U(|x - c|) on normalised
(x, y) coordinates: an affine part plus a thin-plate spline with radial basis U(r) = r^2 log r on a
regular grid of control points c (FOMM draws the same kind of transform, with its own kernel).
It maps points, gives its exact jacobian, and resamples images so that the warped image at p
shows the image at T(p).

Coordinates follow the data contract: u in [-1, 1] is the pixel position (u + 1) / 2 * S, so the
centre of pixel i sits at u = (2 i + 1) / S - 1 and images are sampled with ``align_corners=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

# keeps log finite at a control point; U and its gradient both vanish there
LOG_EPSILON = 1e-12


@dataclass(frozen=True)
class WarpConfig:
    """Strength of random warps: std of the affine matrix noise and of the spline weights."""

    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5  # control points per side of the regular grid


@dataclass(frozen=True)
class Warp:
    """A batch of B transforms: ``theta`` (B, 2, 3) = [A | b], ``control_points`` (C, 2),
    ``control_weights`` (B, C, 2)."""

    theta: torch.Tensor
    control_points: torch.Tensor
    control_weights: torch.Tensor

    def __len__(self) -> int:
        return self.theta.shape[0]

    def to(self, device: torch.device | str) -> Warp:
        return replace(
            self,
            theta=self.theta.to(device),
            control_points=self.control_points.to(device),
            control_weights=self.control_weights.to(device),
        )

    def slice(self, start: int, stop: int) -> Warp:
        """Transforms ``start:stop`` of the batch."""
        return replace(self, theta=self.theta[start:stop], control_weights=self.control_weights[start:stop])

    def points(self, coords: torch.Tensor) -> torch.Tensor:
        """T(coords) for (B, N, 2) coordinates."""
        linear, shift = self.theta[:, :, :2], self.theta[:, :, 2]
        out = coords @ linear.transpose(1, 2) + shift.unsqueeze(1)
        offsets, squared = self._offsets(coords)
        basis = 0.5 * squared * torch.log(squared + LOG_EPSILON)  # r^2 log r, written with s = r^2
        return out + basis @ self.control_weights.to(coords.dtype)

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """dT/dx at (B, N, 2) coordinates: (B, N, 2, 2), row = output coordinate."""
        linear = self.theta[:, :, :2].to(coords.dtype)
        offsets, squared = self._offsets(coords)
        # d/dx [0.5 s log(s + eps)] with s = |x - c|^2
        scale = torch.log(squared + LOG_EPSILON) + squared / (squared + LOG_EPSILON)
        grad_basis = scale.unsqueeze(-1) * offsets  # (B, N, C, 2)
        spline = torch.einsum("bco,bncd->bnod", self.control_weights.to(coords.dtype), grad_basis)
        return linear.unsqueeze(1) + spline

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """Resample (B, C, H, W) images: the result at pixel p is the input at T(p) (reflected at borders)."""
        b, _, h, w = images.shape
        grid = pixel_centres(h, w, images.dtype, images.device).reshape(1, h * w, 2).expand(b, -1, -1)
        sample_at = self.points(grid).reshape(b, h, w, 2)
        return F.grid_sample(images, sample_at, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _offsets(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = coords.unsqueeze(2) - self.control_points.to(coords.dtype).view(1, 1, -1, 2)  # (B, N, C, 2)
        return offsets, offsets.square().sum(-1)


def pixel_centres(height: int, width: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(H, W, 2) normalised (x, y) of every pixel centre."""
    xs = (2 * torch.arange(width, dtype=dtype, device=device) + 1) / width - 1
    ys = (2 * torch.arange(height, dtype=dtype, device=device) + 1) / height - 1
    return torch.stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)], dim=-1)


def control_grid(points: int) -> torch.Tensor:
    """(points^2, 2) control points on a regular grid over [-1, 1]^2."""
    axis = torch.linspace(-1.0, 1.0, points)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def identity_warp(batch: int, points_tps: int = WarpConfig.points_tps) -> Warp:
    """T(x) = x for every item of the batch."""
    theta = torch.eye(2, 3).expand(batch, 2, 3).clone()
    return Warp(theta, control_grid(points_tps), torch.zeros(batch, points_tps**2, 2))


def affine_warp(theta: torch.Tensor, points_tps: int = WarpConfig.points_tps) -> Warp:
    """A purely affine warp from (B, 2, 3) matrices [A | b]."""
    return Warp(theta, control_grid(points_tps), torch.zeros(theta.shape[0], points_tps**2, 2, dtype=theta.dtype))


def random_warp(batch: int, generator: torch.Generator, config: WarpConfig = WarpConfig()) -> Warp:
    """B random warps near the identity, drawn from ``generator`` only (so they are reproducible)."""
    noise = torch.randn(batch, 2, 3, generator=generator) * config.sigma_affine
    weights = torch.randn(batch, config.points_tps**2, 2, generator=generator) * config.sigma_tps
    return Warp(torch.eye(2, 3) + noise, control_grid(config.points_tps), weights)
