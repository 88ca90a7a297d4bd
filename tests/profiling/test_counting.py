"""Parameters, sizes and MACs on layers whose counts are known by hand."""

from __future__ import annotations

import torch
from torch import nn

from compressbench.profiling.counting import count_params, macs_fvcore, macs_thop


def test_single_conv_counts_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(1, 3, 16, 16)
    expected_macs = 8 * 16 * 16 * 3 * 9  # output elements x (C_in x k x k)
    assert macs_fvcore(conv, x).total == expected_macs
    assert macs_thop(conv, x).total == expected_macs
    assert count_params(conv) == 8 * 3 * 9 + 8


def test_batch_norm_differs_between_counters():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    x = torch.rand(1, 3, 8, 8)
    fv, th = macs_fvcore(model, x), macs_thop(model, x)
    conv_macs = 4 * 8 * 8 * 3
    assert fv.by_module["0"] == th.by_module["0"] == conv_macs
    assert fv.by_module["1"] == 2 * 4 * 8 * 8  # scale and shift per element
    assert th.by_module["1"] == 4 * 4 * 8 * 8  # thop doubles its 2-per-element count for affine


