"""Teacher losses: hand-computed supervised terms; equivariance is zero exactly where it should be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.models import DetectorConfig, build_teacher
from compressbench.training.equivariance_warps import WarpConfig, affine_warp, identity_warp, pixel_centres, random_warp
from compressbench.training.teacher_losses import (
    TeacherLossWeights,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    jacobian_loss,
    keypoint_loss,
    teacher_loss,
)

REDUCED = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)


def reduced_teacher() -> nn.Module:
    torch.manual_seed(0)
    return build_teacher(REDUCED).eval()


class CentroidDetector(nn.Module):
    """Keypoint = intensity-weighted centroid of each channel: exactly equivariant to translations."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, h, w = images.shape
        grid = pixel_centres(h, w, images.dtype)
        mass = images / images.sum(dim=(2, 3), keepdim=True)
        value = (mass.unsqueeze(-1) * grid).sum(dim=(2, 3))
        return {"value": value, "jacobian": torch.eye(2).expand(b, c, 2, 2).clone()}


def test_supervised_terms_are_mean_absolute_errors():
    value = torch.tensor([[[0.0, 0.5], [1.0, -1.0]]])
    landmarks = torch.tensor([[[0.1, 0.5], [0.6, -1.0]]])
    assert keypoint_loss(value, landmarks).item() == pytest.approx((0.1 + 0.4) / 4)
    jac = torch.eye(2).expand(1, 2, 2, 2)
    target = jac + torch.tensor([[0.0, 0.2], [0.0, 0.0]])
    assert jacobian_loss(jac, target).item() == pytest.approx(0.2 * 2 / 8)


def test_equivariance_is_zero_for_an_exact_inverse_affine():
    theta = torch.tensor([[[1.1, 0.2, 0.05], [-0.1, 0.9, -0.02]]])
    warp = affine_warp(theta)
    value = torch.tensor([[[0.2, -0.3], [-0.5, 0.4]]])
    jac = torch.tensor([[[[1.0, 0.1], [0.2, 0.8]], [[0.7, 0.0], [0.3, 1.2]]]])
    linear, shift = theta[:, :, :2], theta[:, :, 2]
    inverse = torch.linalg.inv(linear)
    warped_value = ((value - shift.unsqueeze(1)) @ inverse.transpose(1, 2))  # T^-1(kp)
    warped_jac = inverse.unsqueeze(1) @ jac  # the warped frame's local frames
    assert equivariance_value_loss(value, warped_value, warp).item() < 1e-7
    assert equivariance_jacobian_loss(jac, warped_value, warped_jac, warp).item() < 1e-6
    # ignoring the warp: |T(kp) - kp| = (0.01, 0.01) and (0.08, 0.01), by hand
    assert equivariance_value_loss(value, value, warp).item() == pytest.approx(0.11 / 4)


def test_centroid_toy_is_equivariant_to_integer_shifts():
    images = torch.zeros(1, 2, 32, 32)
    images[0, 0, 10:14, 12:20] = 1.0
    images[0, 1, 15:18, 8:11] = torch.tensor([1.0, 2.0, 3.0])
    theta = torch.eye(2, 3).unsqueeze(0).clone()
    theta[0, :, 2] = torch.tensor([3.0, -2.0]) * 2 / 32  # 3 px right, 2 px up: content stays inside
    weights = TeacherLossWeights(keypoint=0, jacobian=0, equivariance_value=1, equivariance_jacobian=1)
    loss, terms = teacher_loss(CentroidDetector(), images, affine_warp(theta), weights=weights)
    assert terms["equivariance_value"] < 1e-6 and terms["equivariance_jacobian"] == 0.0
    assert loss.item() < 1e-6


def test_identity_warp_gives_zero_equivariance_on_the_teacher():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    weights = TeacherLossWeights(keypoint=0, jacobian=0, equivariance_value=1, equivariance_jacobian=1)
    model = reduced_teacher()
    _, same = teacher_loss(model, images, identity_warp(2), weights=weights)
    assert same["equivariance_value"] < 1e-6 and same["equivariance_jacobian"] < 1e-5
    strong = WarpConfig(sigma_affine=0.2, sigma_tps=0.02)
    _, moved = teacher_loss(model, images, random_warp(2, torch.Generator().manual_seed(1), strong), weights=weights)
    assert moved["equivariance_value"] > 1e-3  # an untrained detector is not equivariant


def test_terms_that_apply_and_their_weighted_sum():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    landmarks = torch.zeros(2, 10, 2)
    jacobians = torch.eye(2).expand(2, 10, 2, 2)
    model = reduced_teacher()
    weights = TeacherLossWeights(keypoint=2.0, jacobian=3.0, equivariance_value=5.0, equivariance_jacobian=7.0)
    warp = random_warp(2, torch.Generator().manual_seed(1))
    loss, terms = teacher_loss(model, images, warp, landmarks, jacobians, weights)
    assert set(terms) == {"keypoint", "jacobian", "equivariance_value", "equivariance_jacobian"}
    expected = 2 * terms["keypoint"] + 3 * terms["jacobian"] + 5 * terms["equivariance_value"] + 7 * terms["equivariance_jacobian"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    _, unlabeled = teacher_loss(model, images, warp, weights=weights)  # user frames: equivariance only
    assert set(unlabeled) == {"equivariance_value", "equivariance_jacobian"}
    _, supervised = teacher_loss(model, images, None, landmarks, jacobians, weights)
    assert set(supervised) == {"keypoint", "jacobian"}
    with pytest.raises(ValueError, match="no loss term applies"):
        teacher_loss(model, images, None, weights=weights)
