"""Random warps: exact jacobians, exact identity and integer shifts, reproducible draws."""

from __future__ import annotations

import torch

from compressbench.training.equivariance_warps import (
    Warp,
    WarpConfig,
    affine_warp,
    identity_warp,
    pixel_centres,
    random_warp,
)


def test_jacobian_matches_autograd():
    warp = random_warp(3, torch.Generator().manual_seed(0), WarpConfig(sigma_affine=0.1, sigma_tps=0.05))
    double = Warp(warp.theta.double(), warp.control_points.double(), warp.control_weights.double())
    coords = (torch.rand(3, 7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_()
    rows = [torch.autograd.grad(double.points(coords)[..., i].sum(), coords)[0] for i in range(2)]
    assert torch.allclose(double.jacobian(coords), torch.stack(rows, dim=-2), atol=1e-10)


def test_spline_vanishes_at_control_points_and_identity_is_exact():
    warp = random_warp(2, torch.Generator().manual_seed(0))
    assert (warp.points(torch.zeros(2, 1, 2)) - warp.theta[:, :, 2].unsqueeze(1)).abs().max() > 0  # a real move
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    identity = identity_warp(2)
    assert torch.equal(identity.images(images), images)
    coords = torch.rand(2, 5, 2)
    assert torch.equal(identity.points(coords), coords)
    assert torch.equal(identity.jacobian(coords), torch.eye(2).expand(2, 5, 2, 2))


def test_integer_pixel_shift_moves_pixels_exactly():
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    theta = torch.eye(2, 3).unsqueeze(0).clone()
    theta[0, 0, 2] = 3 * 2 / 16  # 3 pixels in x: the result at p shows the input at p + 3 px
    shifted = affine_warp(theta).images(images)
    assert torch.equal(shifted[..., :13], images[..., 3:])


def test_pixel_centres_follow_the_data_contract():
    centres = pixel_centres(4, 8)
    assert torch.allclose(centres[0, :, 0], torch.tensor([-7, -5, -3, -1, 1, 3, 5, 7]) / 8)
    assert torch.allclose(centres[:, 0, 1], torch.tensor([-3, -1, 1, 3]) / 4)


def test_draws_are_reproducible_and_near_identity():
    a = random_warp(4, torch.Generator().manual_seed(5))
    b = random_warp(4, torch.Generator().manual_seed(5))
    assert torch.equal(a.theta, b.theta) and torch.equal(a.control_weights, b.control_weights)
    moved = (a.points(pixel_centres(8, 8).reshape(1, -1, 2).expand(4, -1, -1)) - pixel_centres(8, 8).reshape(1, -1, 2))
    assert 0.005 < moved.abs().mean() < 0.2
