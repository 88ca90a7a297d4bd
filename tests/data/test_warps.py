"""Pose-warp math: Newton inversion, analytic jacobians against finite differences, the spline side
conditions and the sampling grid."""

import math

import pytest
import torch

from compressbench.data.warps import PoseWarp, control_grid, invert_2x2, pixel_centres, remove_affine_part


def _warp(batch: int = 3, tps_scale: float = 0.02, seed: int = 0) -> PoseWarp:
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(batch, generator=g, dtype=torch.float64) - 0.5
    scale = 0.9 + 0.3 * torch.rand(batch, generator=g, dtype=torch.float64)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos * 1.1], -1)], -2)
    control = control_grid(5, torch.float64)
    weights = (
        remove_affine_part(torch.rand(batch, 25, 2, generator=g, dtype=torch.float64) * 2 - 1, control) * tps_scale
    )
    translation = 0.2 * torch.rand(batch, 2, generator=g, dtype=torch.float64) - 0.1
    return PoseWarp(linear, translation, weights, control)


def _canonical_points(batch: int = 3, n: int = 7) -> torch.Tensor:
    return torch.rand(batch, n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 0.5


def test_forward_inverts_backward():
    warp, q = _warp(), _canonical_points()
    p = warp.forward(q)
    assert torch.allclose(warp.backward(p), q, atol=1e-12)
    assert (p - q).abs().max() > 0.05  # the warp is far from the identity, so this is not trivial


def test_backward_jacobian_matches_finite_differences():
    warp, p, h = _warp(), _canonical_points(), 1e-5
    numeric = torch.stack(
        [(warp.backward(p + h * e) - warp.backward(p - h * e)) / (2 * h) for e in torch.eye(2, dtype=torch.float64)], -1
    )
    assert torch.allclose(warp.backward_jacobian(p), numeric, atol=1e-8)


def test_forward_jacobian_matches_finite_differences_of_forward_warp():
    warp, q, h = _warp(), _canonical_points(), 1e-5
    numeric = torch.stack(
        [(warp.forward(q + h * e) - warp.forward(q - h * e)) / (2 * h) for e in torch.eye(2, dtype=torch.float64)], -1
    )
    analytic = warp.forward_jacobian(warp.forward(q))
    assert torch.allclose(analytic, numeric, atol=1e-7)
    # the spline matters: the jacobian is not just the linear part
    assert (analytic - warp.linear[:, None]).abs().max() > 1e-2


def test_without_spline_the_warp_is_exactly_affine():
    warp = _warp(tps_scale=0.0)
    q = _canonical_points()
    expected = q @ warp.linear.transpose(1, 2) + warp.translation[:, None]
    assert torch.allclose(warp.forward(q), expected, atol=1e-14)
    assert torch.allclose(warp.forward_jacobian(expected), warp.linear[:, None].expand(-1, 7, -1, -1), atol=1e-14)


def test_remove_affine_part_meets_side_conditions():
    control = control_grid(5, torch.float64)
    weights = remove_affine_part(torch.randn(2, 25, 2, dtype=torch.float64), control)
    assert torch.allclose(weights.sum(1), torch.zeros(2, 2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(control.T @ weights, torch.zeros(2, 2, 2, dtype=torch.float64), atol=1e-12)


def test_invert_2x2():
    m = torch.tensor([[[2.0, 1.0], [1.0, 3.0]]], dtype=torch.float64)
    assert torch.allclose(invert_2x2(m) @ m, torch.eye(2, dtype=torch.float64)[None])


def test_pixel_centres_follow_contract():
    # (u + 1) / 2 * S is the pixel position, so pixel i's centre i + 0.5 maps to u = (2i + 1) / S - 1
    assert pixel_centres(4).tolist() == [-0.75, -0.25, 0.25, 0.75]


@pytest.mark.parametrize("size", [24, 128])
def test_sampling_grid_matches_exact_backward(size):
    warp = _warp(tps_scale=0.02)
    axis = pixel_centres(size, torch.float64)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    exact = warp.backward(torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(3, -1, -1)).reshape(3, size, size, 2)
    grid = warp.sampling_grid(size)
    assert grid.shape == (3, size, size, 2)
    # interpolating the smooth spline between lattice points costs far less than a pixel
    assert (grid - exact).abs().max() * size / 2 < 0.05
    assert math.isclose(float(grid[0, 0, 0, 0]), float(exact[0, 0, 0, 0]), abs_tol=1e-12)
