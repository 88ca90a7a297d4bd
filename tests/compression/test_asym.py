"""asym: 3x1 + 1x3 swaps with Tai et al.'s closed-form (SVD) initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compressbench.compression import get_method
from compressbench.compression.asym import AsymmetricConv, rank_from_ratio
from compressbench.errors import CompressbenchError
from compressbench.profiling import count_params
from compressbench.provenance import load_model, save_variant
from tests.compression.swap_helpers import (
    REDUCED_CONV_PARAMS,
    REDUCED_CONVS,
    REDUCED_PARAMS,
    frames,
    lively_teacher,
    max_output_difference,
    swap,
)

METHOD = get_method("asym")


@pytest.fixture(scope="module")
def teacher():
    return lively_teacher()


def _asym_params(ranks: list[int]) -> int:
    """Hand formula: 3x1 is 3*r*C_in (no bias), 1x3 is 3*r*C_out + C_out."""
    swapped = sum(3 * r * i + 3 * r * o + o for r, (_, i, o) in zip(ranks, REDUCED_CONVS))
    return REDUCED_PARAMS - REDUCED_CONV_PARAMS + swapped


@pytest.mark.parametrize(("in_channels", "out_channels", "bias"), [(5, 7, True), (8, 3, False), (3, 16, True)])
def test_full_rank_reproduces_a_single_conv_borders_included(in_channels, out_channels, bias):
    torch.manual_seed(3)
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    rank = 3 * min(in_channels, out_channels)
    pair = METHOD.build(in_channels, out_channels, rank, bias)
    with torch.no_grad():
        METHOD.initialise(pair, conv)
        for shape in ((2, in_channels, 6, 5), (1, in_channels, 1, 4), (1, in_channels, 3, 1)):
            x = torch.randn(*shape)
            torch.testing.assert_close(pair(x), conv(x), atol=1e-5, rtol=0)
    assert isinstance(pair, nn.Sequential) and isinstance(pair, AsymmetricConv)
    assert pair.vertical.kernel_size == (3, 1) and pair.vertical.padding == (1, 0) and pair.vertical.bias is None
    assert pair.horizontal.kernel_size == (1, 3) and pair.horizontal.padding == (0, 1)


def test_a_bias_on_the_vertical_conv_would_break_the_borders():
    # Why the 3x1 has no bias: the 1x3 zero-pads its input columns, so a bias added before it is
    # missing at the left/right edges. Moving the bias changes the border columns only.
    torch.manual_seed(5)
    conv = nn.Conv2d(2, 2, 3, padding=1)
    pair = METHOD.build(2, 2, 6, True)
    with torch.no_grad():
        METHOD.initialise(pair, conv)
        moved = nn.Conv2d(2, 6, (3, 1), padding=(1, 0))
        moved.weight.copy_(pair.vertical.weight)
        # a vertical bias b_v that, in the interior, adds the original bias through the 1x3
        b_v = torch.linalg.lstsq(pair.horizontal.weight.sum(dim=(2, 3)), conv.bias[:, None]).solution[:, 0]
        moved.bias.copy_(b_v)
        x = torch.randn(1, 2, 5, 5)
        out = nn.functional.conv2d(moved(x), pair.horizontal.weight, None, padding=(0, 1))
        diff = (out - conv(x)).abs()[0]
    assert diff[:, :, 1:-1].max() < 1e-5
    assert diff[:, :, [0, -1]].max() > 1e-3


def test_full_rank_reproduces_the_teacher(teacher):
    variant = swap(teacher, "asym", rank_ratio=1.0)
    x = frames()
    with torch.no_grad():
        diff = max_output_difference(variant.module(x), teacher(x))
    assert max(diff.values()) < 1e-4, diff
    assert [layer["rank"] for layer in variant.stages[0].report["layers"]] == [
        3 * min(i, o) for _, i, o in REDUCED_CONVS
    ]
    assert variant.stages[0].report["max_relative_error"] < 1e-6


@pytest.mark.parametrize(
    ("options", "ranks", "expected"),
    [
        ({"rank": 2}, [2] * 6, 29_778),
        ({}, [3, 16, 32, 32, 16, 8], 53_211),  # default: min(C_in, C_out)
        ({"rank_ratio": 1 / 3}, [3, 16, 32, 32, 16, 8], 53_211),
        ({"rank_ratio": 0.25}, [3, 12, 24, 24, 12, 6], 46_827),
    ],
)
def test_parameter_counts_match_the_hand_formula(teacher, options, ranks, expected):
    variant = swap(teacher, "asym", **options)
    report = variant.stages[0].report
    assert [layer["rank"] for layer in report["layers"]] == ranks
    assert _asym_params(ranks) == expected
    assert count_params(variant.module) == expected == report["params_after"]
    assert report["params_before"] == REDUCED_PARAMS
    assert variant.stages[0].structure["layers"] == [
        {"name": n, "in_channels": i, "out_channels": o, "bias": True, "rank": r}
        for r, (n, i, o) in zip(ranks, REDUCED_CONVS)
    ]


def test_rank_c_pair_saves_a_third_on_a_square_layer():
    # seed 002's claim: 3x1 (C->C) + 1x3 (C->C) is 6C^2 weights against 9C^2
    c = 12
    assert count_params(METHOD.build(c, c, c, False)) == 6 * c * c
    assert count_params(nn.Conv2d(c, c, 3, bias=False)) == 9 * c * c


def test_error_is_the_eckart_young_residual_and_shrinks_with_rank(teacher):
    name, i, o = REDUCED_CONVS[1]  # 16 -> 32: full rank 48
    w = teacher.get_submodule(name).weight.detach().double().numpy()
    matrix = np.transpose(w, (1, 2, 3, 0)).reshape(3 * i, 3 * o)  # rows (c, kh), columns (kw, n)
    s = np.linalg.svd(matrix, compute_uv=False)
    errors = []
    for rank in (1, 2, 4, 9):  # every layer allows rank 9 (the 3-channel input layer's maximum)
        report = swap(teacher, "asym", rank=rank).stages[0].report
        layer = report["layers"][1]
        assert layer["relative_error"] == pytest.approx(np.sqrt((s[rank:] ** 2).sum() / (s**2).sum()), abs=1e-5)
        errors.append(report["mean_relative_error"])
    assert errors == sorted(errors, reverse=True) and len(set(errors)) == len(errors)
    ratios = [
        swap(teacher, "asym", rank_ratio=r).stages[0].report["mean_relative_error"] for r in (0.1, 0.4, 0.7, 1.0)
    ]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < 1e-6 < ratios[-2]


def test_random_init_is_far_from_the_teacher(teacher):
    report = swap(teacher, "asym", init="random").stages[0].report
    assert all(layer["relative_error"] > 0.9 for layer in report["layers"])


def test_rank_above_a_layers_full_rank_names_the_layer(teacher):
    with pytest.raises(
        CompressbenchError, match=r"rank 10 exceeds the full rank 9 of predictor\.encoder\.down_blocks\.0\.conv"
    ):
        swap(teacher, "asym", rank=10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rank": 0}, "at least 1"),
        ({"rank_ratio": 0.0}, r"in \(0, 1\]"),
        ({"rank_ratio": 1.5}, r"in \(0, 1\]"),
        ({"rank": "three"}, "expects int"),
    ],
)
def test_bad_options_are_errors(options, message):
    with pytest.raises(CompressbenchError, match=message):
        METHOD.resolve(options)


def test_rank_and_rank_ratio_together_is_an_error(teacher):
    with pytest.raises(CompressbenchError, match="either rank or rank_ratio"):
        swap(teacher, "asym", rank=2, rank_ratio=0.5)


def test_rank_from_ratio_rounds_up_without_float_fuzz():
    assert rank_from_ratio(1 / 3, 48) == 16
    assert rank_from_ratio(0.25, 9) == 3
    assert rank_from_ratio(0.01, 9) == 1
    assert rank_from_ratio(1.0, 96) == 96


def test_save_and_reload_gives_identical_outputs(teacher, tmp_path):
    variant = swap(teacher, "asym", rank_ratio=0.5)
    path = save_variant(variant, tmp_path / "asym.pt")
    loaded = load_model(path)
    x = frames(seed=6)
    with torch.no_grad():
        expected, got = variant.module(x), loaded(x)
    for key in ("value", "jacobian", "heatmap"):
        assert torch.equal(expected[key], got[key])
    assert isinstance(loaded.predictor.encoder.down_blocks[2].conv, AsymmetricConv)
