"""dsconv: depthwise 3x3 + pointwise 1x1 swaps with network-decoupling (SVD) initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compressbench.compression import get_method
from compressbench.compression.dsconv import DepthwiseSeparableConv
from compressbench.errors import CompressbenchError
from compressbench.profiling import count_params
from compressbench.provenance import load_model, save_variant
from tests.compression.swap_helpers import (
    QUIET,
    REDUCED_CONV_PARAMS,
    REDUCED_CONVS,
    REDUCED_PARAMS,
    frames,
    lively_teacher,
    max_output_difference,
    swap,
)

METHOD = get_method("dsconv")


@pytest.fixture(scope="module")
def teacher():
    return lively_teacher()


def _dsconv_params(multiplier: int) -> int:
    """Hand formula: depthwise 9*m*C_in (no bias) + pointwise m*C_in*C_out + C_out bias."""
    swapped = sum(9 * multiplier * i + multiplier * i * o + o for _, i, o in REDUCED_CONVS)
    return REDUCED_PARAMS - REDUCED_CONV_PARAMS + swapped


@pytest.mark.parametrize(("in_channels", "out_channels", "bias"), [(5, 12, True), (4, 6, False), (3, 16, True)])
def test_full_multiplier_reproduces_a_single_conv(in_channels, out_channels, bias):
    torch.manual_seed(3)
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    multiplier = min(out_channels, 9)
    pair = METHOD.build(in_channels, out_channels, multiplier, bias)
    with torch.no_grad():
        METHOD.initialise(pair, conv)
        x = torch.randn(2, in_channels, 7, 5)  # small odd map: borders matter
        torch.testing.assert_close(pair(x), conv(x), atol=1e-5, rtol=0)
    assert isinstance(pair, nn.Sequential) and isinstance(pair, DepthwiseSeparableConv)
    assert pair.depthwise.groups == in_channels and pair.depthwise.out_channels == in_channels * multiplier
    assert (pair.pointwise.bias is not None) == bias


def test_multiplier_above_the_slice_rank_is_still_exact():
    # C_out = 4 < 9: multiplier 9 has 5 depthwise kernels per channel with no weight on them.
    torch.manual_seed(4)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    pair = METHOD.build(3, 4, 9, True)
    with torch.no_grad():
        METHOD.initialise(pair, conv)
        x = torch.randn(1, 3, 6, 6)
        torch.testing.assert_close(pair(x), conv(x), atol=1e-5, rtol=0)
    pointwise = pair.pointwise.weight.detach().reshape(4, 3, 9)
    assert torch.count_nonzero(pointwise[:, :, 4:]) == 0


def test_full_multiplier_reproduces_the_teacher(teacher):
    variant = swap(teacher, "dsconv", multiplier=9)
    x = frames()
    with torch.no_grad():
        diff = max_output_difference(variant.module(x), teacher(x))
    assert max(diff.values()) < 1e-4, diff
    assert variant.stages[0].report["max_relative_error"] < 1e-6


def test_swaps_exactly_the_hourglass_convs_and_nothing_else(teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    model = swap(teacher, "dsconv", multiplier=2).module
    for name, i, o in REDUCED_CONVS:
        pair = model.get_submodule(name)
        assert isinstance(pair, DepthwiseSeparableConv) and pair.multiplier == 2
        assert pair.depthwise.weight.shape == (2 * i, 1, 3, 3)
        assert pair.pointwise.weight.shape == (o, 2 * i, 1, 1)
    for head in ("kp", "jacobian", "down"):
        for key, value in getattr(model, head).state_dict().items():
            assert torch.equal(value, before[f"{head}.{key}"])
    # the input model is untouched
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert type(teacher.predictor.encoder.down_blocks[0].conv) is nn.Conv2d


@pytest.mark.parametrize(("multiplier", "expected"), [(1, 35_339), (2, 43_174), (4, 58_844)])
def test_parameter_counts_match_the_hand_formula(teacher, multiplier, expected):
    variant = swap(teacher, "dsconv", multiplier=multiplier)
    report = variant.stages[0].report
    assert _dsconv_params(multiplier) == expected
    assert count_params(variant.module) == expected
    assert report["params_before"] == REDUCED_PARAMS and report["params_after"] == expected
    assert [layer["params_after"] for layer in report["layers"]] == [
        9 * multiplier * i + multiplier * i * o + o for _, i, o in REDUCED_CONVS
    ]
    assert variant.stages[0].structure["layers"] == [
        {"name": n, "in_channels": i, "out_channels": o, "bias": True, "multiplier": multiplier}
        for n, i, o in REDUCED_CONVS
    ]


def test_error_is_the_discarded_singular_energy_and_shrinks_with_the_multiplier(teacher):
    weights = {n: teacher.get_submodule(n).weight.detach().double().numpy() for n, _, _ in REDUCED_CONVS}
    previous = None
    for multiplier in range(1, 10):
        report = swap(teacher, "dsconv", multiplier=multiplier).stages[0].report
        for layer in report["layers"]:
            w = weights[layer["name"]]
            slices = np.transpose(w, (1, 0, 2, 3)).reshape(w.shape[1], w.shape[0], 9)
            s = np.linalg.svd(slices, compute_uv=False)
            expected = np.sqrt((s[:, multiplier:] ** 2).sum() / (w**2).sum())
            assert layer["relative_error"] == pytest.approx(expected, abs=1e-5)
        if previous is not None:
            assert report["mean_relative_error"] < previous
        previous = report["mean_relative_error"]
    assert previous < 1e-6


def test_random_init_is_far_from_the_teacher_and_seeded(teacher):
    a = swap(teacher, "dsconv", multiplier=2, init="random")
    b = swap(teacher, "dsconv", multiplier=2, init="random")
    assert all(layer["relative_error"] > 0.9 for layer in a.stages[0].report["layers"])
    assert all(torch.equal(v, b.module.state_dict()[k]) for k, v in a.module.state_dict().items())
    svd = swap(teacher, "dsconv", multiplier=2).stages[0].report["mean_relative_error"]
    assert svd < a.stages[0].report["mean_relative_error"]


@pytest.mark.parametrize(("value", "message"), [(0, "at least 1"), (-2, "at least 1"), (10, "at most 9")])
def test_bad_multiplier_is_an_error(value, message):
    with pytest.raises(CompressbenchError, match=message):
        METHOD.resolve({"multiplier": value})


def test_bad_init_is_an_error():
    with pytest.raises(CompressbenchError, match="svd, random"):
        METHOD.resolve({"init": "kmeans"})


def test_save_and_reload_gives_identical_outputs(teacher, tmp_path):
    variant = swap(teacher, "dsconv", multiplier=3)
    path = save_variant(variant, tmp_path / "dsconv.pt")
    loaded = load_model(path)
    x = frames(seed=5)
    with torch.no_grad():
        expected, got = variant.module(x), loaded(x)
    for key in ("value", "jacobian", "heatmap"):
        assert torch.equal(expected[key], got[key])
    assert isinstance(loaded.predictor.decoder.up_blocks[2].conv, DepthwiseSeparableConv)


def test_apply_leaves_the_callers_rng_alone(teacher):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    METHOD.apply(teacher, METHOD.resolve({"init": "random"}), QUIET)
    assert torch.equal(torch.rand(3), expected)
