"""Pose warps between image and canonical (face) coordinates: an affine pose plus a thin-plate spline.

The warp is defined backwards, image -> canonical, because rendering needs the canonical point under
every pixel:  B(p) = M (x + D(x)),  x = p - t,  with M the inverse of the forward linear pose, t the
translation and D a thin-plate-spline displacement D(x) = sum_k w_k U(|x - c_k|^2), U(r2) = r2 log r2,
on fixed control points c_k (FOMM uses the same kernel for its random equivariance warps).
Landmark image positions come from inverting B numerically (Newton), and the jacobian
d(image)/d(canonical) at a landmark is the inverse of B's jacobian there.
All coordinates are normalised to [-1, 1] with (x, y) order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from compressbench.data.resample import upsample

_MIN_R2 = 1e-12  # U(r2) and its gradient both tend to 0 at r = 0; the clamp keeps log finite
NEWTON_STEPS = 12


def control_grid(points_per_side: int = 5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(P*P, 2) thin-plate-spline control points on a regular grid over [-1, 1]^2."""
    axis = torch.linspace(-1, 1, points_per_side, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def remove_affine_part(weights: torch.Tensor, control_points: torch.Tensor) -> torch.Tensor:
    """Project (B, K, 2) spline weights so that sum w = 0 and sum w c = 0.

    Those are the usual thin-plate-spline side conditions: without them the kernel sum grows like
    an affine map far from the control points and would fight the explicit affine pose.
    """
    basis = torch.cat([torch.ones_like(control_points[:, :1]), control_points], dim=1)  # (K, 3)
    projector = basis @ torch.linalg.solve(basis.T @ basis, basis.T)  # (K, K)
    return weights - projector.to(weights.dtype) @ weights


def pixel_centres(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised coordinates of the ``size`` pixel centres along one axis: (2i + 1) / size - 1."""
    return (2 * torch.arange(size, dtype=dtype) + 1) / size - 1


def invert_2x2(matrix: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices (cheaper than linalg.inv for tiny batches)."""
    a, b = matrix[..., 0, 0], matrix[..., 0, 1]
    c, d = matrix[..., 1, 0], matrix[..., 1, 1]
    det = a * d - b * c
    rows = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
    return rows / det[..., None, None]


@dataclass(frozen=True)
class PoseWarp:
    """A batch of B warps; ``linear`` (B, 2, 2) maps canonical to image (scale, rotation, shear),
    ``translation`` (B, 2) moves the face in the image, ``tps_weights`` (B, K, 2) bend it."""

    linear: torch.Tensor
    translation: torch.Tensor
    tps_weights: torch.Tensor
    control_points: torch.Tensor

    @property
    def inverse_linear(self) -> torch.Tensor:
        return invert_2x2(self.linear)

    def with_translation(self, translation: torch.Tensor) -> PoseWarp:
        return replace(self, translation=translation.to(self.translation.dtype))

    def to(self, dtype: torch.dtype) -> PoseWarp:
        return PoseWarp(
            self.linear.to(dtype), self.translation.to(dtype), self.tps_weights.to(dtype), self.control_points.to(dtype)
        )

    def _offsets(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = p - t (B, N, 2) and x - c_k (B, N, K, 2) with r2 (B, N, K)."""
        x = p - self.translation[:, None, :]
        diff = x[:, :, None, :] - self.control_points[None, None]
        return x, diff

    def backward(self, p: torch.Tensor) -> torch.Tensor:
        """Canonical coordinates (B, N, 2) of image points ``p`` (B, N, 2)."""
        x, diff = self._offsets(p)
        r2 = (diff * diff).sum(-1).clamp_min(_MIN_R2)
        displacement = (r2 * torch.log(r2)) @ self.tps_weights  # (B, N, 2)
        return (x + displacement) @ self.inverse_linear.transpose(1, 2)

    def backward_jacobian(self, p: torch.Tensor) -> torch.Tensor:
        """d(canonical)/d(image) at image points ``p``: (B, N, 2, 2), [i, j] = d q_i / d p_j."""
        _, diff = self._offsets(p)
        r2 = (diff * diff).sum(-1).clamp_min(_MIN_R2)
        radial = 2 * (torch.log(r2) + 1)  # dU/dx = radial * (x - c)
        # J_D[i, j] = sum_k w_k[i] * radial_k * diff_k[j]
        jac_d = torch.einsum("bki,bnk,bnkj->bnij", self.tps_weights, radial, diff)
        eye = torch.eye(2, dtype=p.dtype)
        return self.inverse_linear[:, None] @ (eye + jac_d)

    def forward(self, q: torch.Tensor, steps: int = NEWTON_STEPS) -> torch.Tensor:
        """Image points (B, N, 2) whose canonical coordinates are ``q``: Newton on B(p) = q."""
        p = q @ self.linear.transpose(1, 2) + self.translation[:, None, :]  # exact without the spline
        for _ in range(steps):
            residual = self.backward(p) - q
            step = (invert_2x2(self.backward_jacobian(p)) @ residual[..., None])[..., 0]
            p = p - step
        return p

    def forward_jacobian(self, p: torch.Tensor) -> torch.Tensor:
        """d(image)/d(canonical) (B, N, 2, 2) at image points ``p`` (the inverse function theorem)."""
        return invert_2x2(self.backward_jacobian(p))

    def sampling_grid(self, size: int, coarse: int = 33) -> torch.Tensor:
        """(B, size, size, 2) canonical coordinates under every pixel centre, for ``grid_sample``.

        The map is smooth, so it is evaluated exactly on a ``coarse`` x ``coarse`` lattice over the
        pixel-centre span and interpolated bilinearly (exact for the affine part; the spline part is
        off by far less than a pixel), which keeps the spline cost independent of ``size``.
        """
        n = min(size, coarse)
        lo, hi = -1 + 1 / size, 1 - 1 / size
        axis = torch.linspace(lo, hi, n, dtype=self.linear.dtype)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        points = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).expand(self.linear.shape[0], -1, -1)
        grid = self.backward(points).reshape(-1, n, n, 2)
        if n != size:
            grid = upsample(grid.permute(0, 3, 1, 2), size, align_corners=True).permute(0, 2, 3, 1)
        return grid.contiguous()
