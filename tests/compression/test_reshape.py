"""reshape: record every tensor's shape and resize a fresh model to match."""

from __future__ import annotations

import pytest
from torch import nn

from compressbench.compression.reshape import record_shapes, resize_to_shapes
from compressbench.errors import CompressbenchError


def small() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.Linear(8, 4)
    )


def test_resize_recreates_narrower_layers():
    shapes = record_shapes(small())
    shapes.update({"0.weight": [5, 3, 3, 3], "0.bias": [5], "2.weight": [5, 1, 3, 3], "3.weight": [4, 5]})
    for key in ("1.weight", "1.bias", "1.running_mean", "1.running_var"):
        shapes[key] = [5]
    model = resize_to_shapes(small(), shapes)
    assert record_shapes(model) == shapes
    assert (model[0].in_channels, model[0].out_channels) == (3, 5)
    assert model[1].num_features == 5
    assert (model[2].in_channels, model[2].out_channels, model[2].groups) == (5, 5, 5)  # depthwise stays depthwise
    assert model[2].bias is None
    assert (model[3].in_features, model[3].out_features) == (5, 4)


def test_unchanged_shapes_keep_the_same_modules():
    model = small()
    layers = list(model)
    resize_to_shapes(model, record_shapes(small()))
    assert all(a is b for a, b in zip(model, layers))


def test_unknown_key_is_an_error():
    shapes = record_shapes(small())
    shapes["9.weight"] = [1]
    with pytest.raises(CompressbenchError, match="9 \\(absent\\)"):
        resize_to_shapes(small(), shapes)


def test_layer_type_without_resizer_is_an_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.GroupNorm(2, 4))
    shapes = record_shapes(model)
    shapes["1.weight"] = [2]
    with pytest.raises(CompressbenchError, match="1 \\(GroupNorm\\)"):
        resize_to_shapes(model, shapes)
