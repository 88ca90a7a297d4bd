"""Shared machinery of the convolution swaps: which convs are found, errors, rebuild checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import get_method
from compressbench.compression.swaps import find_3x3_convs, is_swappable, relative_error
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.provenance import derive
from tests.compression.swap_helpers import QUIET, REDUCED, REDUCED_CONVS, lively_teacher


@pytest.fixture(scope="module")
def teacher():
    return lively_teacher()


def test_finds_the_hourglass_3x3_convs_in_order(teacher):
    sites = find_3x3_convs(teacher, "dsconv")
    assert [(s.name, s.in_channels, s.out_channels) for s in sites] == REDUCED_CONVS


@pytest.mark.parametrize(
    ("conv", "expected"),
    [
        (nn.Conv2d(4, 4, 3, padding=1), True),
        (nn.Conv2d(4, 4, 3, padding=1, bias=False), True),
        (nn.Conv2d(4, 4, 3, padding=1, stride=2), False),
        (nn.Conv2d(4, 4, 3, padding=1, groups=2), False),
        (nn.Conv2d(4, 4, 3, padding=0), False),
        (nn.Conv2d(4, 4, 3, padding=2, dilation=2), False),
        (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), False),
        (nn.Conv2d(4, 4, 7, padding=3), False),
        (nn.Conv2d(4, 4, 1), False),
    ],
)
def test_only_plain_same_padded_3x3_convs_are_swappable(conv, expected):
    assert is_swappable(conv) is expected


def test_relative_error_by_hand():
    assert relative_error(torch.tensor([3.0, 0.0]), torch.tensor([3.0, 4.0])) == pytest.approx(0.8)
    assert relative_error(torch.ones(2, 2), torch.ones(2, 2)) == 0.0


def test_a_model_without_predictor_is_an_error():
    with pytest.raises(CompressbenchError, match="no .predictor"):
        get_method("asym").apply(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1)), get_method("asym").resolve({}), QUIET)


@pytest.mark.parametrize("chain", ["dsconv,asym", "asym,dsconv", "asym,asym"])
def test_swapping_twice_is_an_error(teacher, chain):
    with pytest.raises(CompressbenchError, match="no plain 3x3"):
        derive(teacher, chain, context=QUIET)


def test_rebuild_on_another_base_model_is_an_error(teacher):
    method = get_method("asym")
    options = method.resolve({"rank": 2})
    structure = method.apply(teacher, options, QUIET).structure
    other = build_teacher(DetectorConfig(block_expansion=4, max_features=32, num_blocks=3))
    with pytest.raises(CompressbenchError, match="does not match a 3x3 convolution"):
        method.rebuild(other, options, structure)


def test_rebuild_recreates_the_shapes(teacher):
    for method_name, options in (("asym", {"rank_ratio": 0.5}), ("dsconv", {"multiplier": 3})):
        method = get_method(method_name)
        resolved = method.resolve(options)
        result = method.apply(teacher, resolved, QUIET)
        rebuilt = method.rebuild(build_teacher(REDUCED), resolved, result.structure)
        expected = {k: v.shape for k, v in result.module.state_dict().items()}
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == expected
