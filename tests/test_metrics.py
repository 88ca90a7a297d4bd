"""Fidelity metrics on cases computed by hand."""

import math

import pytest
import torch

from compressbench.errors import CompressbenchError
from compressbench.metrics import (
    akd_interval_px,
    akd_px,
    heatmap_kl,
    heatmap_mse,
    heatmap_peak,
    jacobian_error,
    landmark_error_px,
    mean_distance,
    nmae,
)


def test_akd_of_a_3_4_5_triangle_is_5_units_in_pixels():
    ref = torch.zeros(1, 1, 2)
    pred = torch.tensor([[[0.03, 0.04]]])  # 0.05 normalised units
    # 0.05 units * 256 / 2 px per unit = 6.4 px
    assert akd_px(pred, ref, image_size=256).item() == pytest.approx(6.4, abs=1e-5)
    assert akd_px(pred, ref, image_size=64).item() == pytest.approx(1.6, abs=1e-6)


def test_the_akd_interval_is_students_t_over_frames_not_keypoints():
    """Three frames of two keypoints at 256 px (128 px per unit): per-frame AKDs 0, 128 and 256 px
    (mean 128, sample sd 128), standard error 128 / sqrt(3); t(0.975, 2 dof) = 4.302652729749462
    (4.303 in every t table), so the half-width is 4.302652729749462 * 128 / sqrt(3) = 317.97 px."""
    ref = torch.zeros(3, 2, 2)
    pred = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, -2.0]]])
    assert akd_px(pred, ref, 256).item() == pytest.approx(128.0)
    assert akd_interval_px(pred, ref, 256) == pytest.approx(4.302652729749462 * 128 / math.sqrt(3), rel=1e-9)
    assert akd_interval_px(pred, ref, 256, confidence=0.5) < akd_interval_px(pred, ref, 256)
    same = torch.tensor([[[1.0, 0.0]]] * 4)  # every frame 128 px off: no spread, no uncertainty
    assert akd_interval_px(same, torch.zeros(4, 1, 2), 256) == 0.0
    assert akd_interval_px(pred[:1], ref[:1], 256) is None  # one frame: no interval
    with pytest.raises(CompressbenchError, match="cannot compare keypoints"):
        akd_interval_px(pred, ref[:, :1], 256)


def test_akd_averages_over_keypoints_and_batch():
    ref = torch.zeros(2, 2, 2)
    pred = torch.tensor(
        [
            [[3.0, 4.0], [0.0, 0.0]],  # distances 5, 0
            [[6.0, 8.0], [0.0, 1.0]],  # distances 10, 1
        ]
    )
    assert mean_distance(pred, ref).item() == pytest.approx(4.0)
    assert akd_px(pred, ref, image_size=2).item() == pytest.approx(4.0)  # 1 px per unit
    assert akd_px(pred, pred).item() == 0.0


def test_landmark_error_is_akd_against_ground_truth():
    gt = torch.tensor([[[0.5, -0.5]]])
    pred = torch.tensor([[[0.5, -0.25]]])
    assert landmark_error_px(pred, gt, 256).item() == pytest.approx(0.25 * 128)


def test_nmae_by_hand():
    gt = torch.tensor([[[0.0, 0.0], [-1.0, 1.0]]])
    pred = torch.tensor([[[0.2, -0.4], [-1.0, 0.0]]])
    # in [0, 1]: |0.1|, |0.2|, |0|, |0.5| -> mean 0.8 / 4 = 0.2
    assert nmae(pred, gt).item() == pytest.approx(0.2, abs=1e-6)
    assert nmae(gt, gt).item() == 0.0


def test_jacobian_error_is_mean_absolute_entry_difference():
    ref = torch.eye(2).expand(1, 2, 2, 2)
    pred = ref.clone()
    pred[0, 0] = torch.tensor([[1.0, 0.4], [0.0, 1.0]])
    pred[0, 1] = torch.tensor([[0.2, 0.0], [0.0, 1.0]])
    # |0.4| + |0.8| over 8 entries
    assert jacobian_error(pred, ref).item() == pytest.approx(1.2 / 8)


def test_heatmap_mse_by_hand():
    p = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    q = torch.tensor([[[[0.5, 0.5], [0.0, 0.0]]]])
    assert heatmap_mse(p, q).item() == pytest.approx((0.25 + 0.25) / 4)


def test_kl_of_identical_maps_is_zero():
    h = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)).flatten(2), -1).view(2, 3, 5, 5)
    assert heatmap_kl(h, h).item() == 0.0


def test_two_bin_kl_by_hand_and_its_direction():
    pred = torch.tensor([[[[0.25, 0.75]]]])
    ref = torch.tensor([[[[0.5, 0.5]]]])
    # KL(ref || pred) = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3)
    assert heatmap_kl(pred, ref).item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)
    # the other direction differs: 0.25 ln(0.5) + 0.75 ln(1.5)
    assert heatmap_kl(ref, pred).item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-6)


def test_kl_ignores_bins_where_the_reference_is_zero_and_averages_heatmaps():
    pred = torch.tensor([[[[0.5, 0.5]], [[0.5, 0.5]]]])
    ref = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.5]]]])
    # first map: 1 * ln(1 / 0.5) = ln 2; second: 0 -> mean ln 2 / 2
    assert heatmap_kl(pred, ref).item() == pytest.approx(math.log(2) / 2, abs=1e-6)


def test_peak_of_one_hot_and_uniform_heatmaps():
    one_hot = torch.zeros(1, 1, 4, 4)
    one_hot[0, 0, 2, 1] = 1.0
    uniform = torch.full((1, 1, 4, 4), 1 / 16)
    assert heatmap_peak(one_hot).item() == 1.0
    assert heatmap_peak(uniform).item() == pytest.approx(1 / 16)
    assert heatmap_peak(torch.cat([one_hot, uniform], dim=1)).item() == pytest.approx((1 + 1 / 16) / 2)


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(CompressbenchError, match="same number of keypoints"):
        akd_px(torch.zeros(1, 5, 2), torch.zeros(1, 10, 2))
    with pytest.raises(CompressbenchError, match="heatmaps"):
        heatmap_kl(torch.zeros(1, 1, 58, 58), torch.zeros(1, 1, 64, 64))
    with pytest.raises(CompressbenchError, match=r"\(2, 2\)"):
        jacobian_error(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))


def test_metrics_are_differentiable():
    pred = torch.tensor([[[0.3, 0.4]]], requires_grad=True)
    akd_px(pred, torch.zeros(1, 1, 2), image_size=2).backward()
    assert torch.allclose(pred.grad, torch.tensor([[[0.6, 0.8]]]))
