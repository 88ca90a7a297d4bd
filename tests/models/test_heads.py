"""Heads around the predictor: anti-alias kernel, spatial softmax, soft-argmax, jacobian pooling."""

from __future__ import annotations

import torch

from compressbench.models.heads import (
    AntiAliasInterpolation2d,
    HeatmapWeightedJacobian,
    SoftArgmax,
    SpatialSoftmax,
    coordinate_grid,
    gaussian_kernel,
)


def test_anti_alias_kernel_sums_to_one_and_has_fomm_size():
    kernel = gaussian_kernel(0.25)
    assert kernel.shape == (13, 13)  # sigma = 1.5, size = 2 * round(6) + 1
    assert abs(float(kernel.sum()) - 1.0) < 1e-6
    assert torch.equal(kernel, kernel.T)
    assert int(kernel.argmax()) == 6 * 13 + 6  # peak in the centre


def test_anti_alias_output_size_and_flat_image_stays_flat():
    module = AntiAliasInterpolation2d(3, 0.25)
    out = module(torch.full((1, 3, 256, 256), 0.5))
    assert out.shape == (1, 3, 64, 64)
    # away from the zero padding a constant image stays constant, because the kernel sums to 1
    torch.testing.assert_close(out[..., 4:-4, 4:-4], torch.full_like(out[..., 4:-4, 4:-4], 0.5))


def test_soft_argmax_of_a_single_peak_is_its_coordinate():
    heatmap = torch.zeros(1, 1, 58, 58)
    heatmap[0, 0, 10, 40] = 1.0  # row 10 (y), column 40 (x)
    value = SoftArgmax()(heatmap)
    expected = torch.tensor([[[-1 + 2 * 40 / 57, -1 + 2 * 10 / 57]]])
    torch.testing.assert_close(value, expected)


def test_coordinate_grid_corners():
    grid = coordinate_grid(3, 5)
    assert grid.shape == (3, 5, 2)
    assert grid[0, 0].tolist() == [-1.0, -1.0]
    assert grid[2, 4].tolist() == [1.0, 1.0]
    assert grid[1, 2].tolist() == [0.0, 0.0]


def test_spatial_softmax_normalises_and_sharpens():
    logits = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    heatmap = SpatialSoftmax(0.1)(logits)
    torch.testing.assert_close(heatmap.sum(), torch.tensor(1.0))
    expected_peak = torch.exp(torch.tensor(10.0)) / (torch.exp(torch.tensor(10.0)) + 3)
    torch.testing.assert_close(heatmap[0, 0, 0, 1], expected_peak)


def test_jacobian_pooling_weights_maps_by_heatmap():
    heatmap = torch.zeros(1, 2, 2, 2)
    heatmap[0, 0, 0, 0] = 1.0
    heatmap[0, 1, 1, 1] = 1.0
    maps = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 8, 2, 2)
    jac = HeatmapWeightedJacobian(2)(heatmap, maps)
    # keypoint 0 reads pixel (0,0) of its 4 maps (channels 0..3); keypoint 1 pixel (1,1) of channels 4..7
    assert jac[0, 0].flatten().tolist() == [0.0, 4.0, 8.0, 12.0]
    assert jac[0, 1].flatten().tolist() == [19.0, 23.0, 27.0, 31.0]
