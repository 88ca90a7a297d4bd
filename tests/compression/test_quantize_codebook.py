"""quantize weights_only=true: Deep Compression 8-bit codebooks."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.compression.quantize import CodebookConv2d, CodebookLinear, kmeans_codebook
from compressbench.models import DetectorConfig, build_teacher
from compressbench.provenance import derive, load_model, provenance_of, save_model, save_variant
from tests.compression.swap_helpers import REDUCED, REDUCED_CONVS, frames, lively_teacher

QUIET = CompressionContext(input_shape=(1, 3, 64, 64), show_progress=False)
HEADS = ["kp", "jacobian"]


def codebook_variant(model: nn.Module, config: DetectorConfig = REDUCED):
    resolved = get_method("quantize").resolve({"weights_only": True})
    return derive(model, "quantize", [resolved], QUIET)[-1]


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def variant(teacher):
    return codebook_variant(teacher)


def test_kmeans_is_exact_for_at_most_256_distinct_values():
    generator = torch.Generator().manual_seed(0)
    levels = torch.randn(200, generator=generator)
    weight = levels[torch.randint(0, 200, (64, 8, 3, 3), generator=generator)]
    codebook, index = kmeans_codebook(weight)
    assert codebook.shape == (256,) and index.shape == weight.shape
    assert torch.equal(codebook[index], weight)


def test_kmeans_starts_linear_and_lowers_the_error():
    weight = torch.randn(128, 64, 3, 3, generator=torch.Generator().manual_seed(1))  # 73,728 distinct values
    linear, linear_index = kmeans_codebook(weight, iterations=0)
    assert torch.allclose(linear, torch.linspace(float(weight.min()), float(weight.max()), 256), atol=1e-6)
    refined, index = kmeans_codebook(weight)
    error_linear = (linear[linear_index] - weight).norm() / weight.norm()
    error_refined = (refined[index] - weight).norm() / weight.norm()
    assert error_refined < error_linear < 0.01
    assert torch.all(refined[1:] >= refined[:-1])  # sorted, so nearest-centroid lookup stays valid


def test_kmeans_handles_a_constant_weight():
    codebook, index = kmeans_codebook(torch.zeros(4, 3, 7, 7))
    assert torch.equal(codebook[index], torch.zeros(4, 3, 7, 7))


def test_codebook_layers_match_their_float_layers():
    conv = nn.Conv2d(64, 4, 3, stride=2, padding=1, groups=2)  # 1,152 weights: clustered
    linear = nn.Linear(5, 3)
    x, v = torch.randn(2, 64, 9, 9), torch.randn(2, 5)
    q_conv, q_linear = CodebookConv2d(conv), CodebookLinear(linear)
    assert 0 < q_conv.set_weight(conv.weight) < 0.01
    assert q_linear.set_weight(linear.weight) == 0.0  # 15 weights: one codebook entry each
    with torch.no_grad():
        rebuilt = q_conv.codebook[q_conv.indices.long()]
        assert torch.equal(q_conv(x), F.conv2d(x, rebuilt, conv.bias, stride=2, padding=1, groups=2))
        assert (q_conv(x) - conv(x)).norm() / conv(x).norm() < 0.01
        assert torch.equal(q_linear(v), linear(v))
    assert q_conv.indices.dtype == torch.uint8 and q_conv.codebook.shape == (256,)


def test_every_conv_is_a_codebook_and_outputs_stay_close(variant, teacher):
    module = variant.module
    convs = [name for name, _, _ in REDUCED_CONVS] + HEADS
    assert all(isinstance(module.get_submodule(n), CodebookConv2d) for n in convs)
    assert not any(isinstance(m, nn.Conv2d) for m in module.modules())
    assert not variant.int8  # arithmetic stays float
    images = frames(3, 64, seed=4)
    with torch.no_grad():
        want, got = teacher(images), module(images)
    assert (got["value"] - want["value"]).abs().max() < 2e-3
    assert (got["jacobian"] - want["jacobian"]).abs().max() < 1e-2
    report = variant.stages[-1].report
    assert report["layers"] == len(convs)
    # heads: 7x7 convs from the 8 + 3 hourglass output channels to 10 heatmaps and 40 jacobian maps
    assert report["codebook_weights"] == sum(9 * i * o for _, i, o in REDUCED_CONVS) + (10 + 40) * 11 * 49
    assert all(0 <= e < 0.01 for e in report["relative_error"].values())


def test_state_dict_holds_uint8_indices_not_float_weights(variant):
    state = variant.module.state_dict()
    convs = [name for name, _, _ in REDUCED_CONVS] + HEADS
    assert not any(f"{name}.weight" in state for name in convs)
    assert all(state[f"{name}.codebook"].dtype == torch.float32 for name in convs)
    indices = {k: v for k, v in state.items() if k.endswith(".indices")}
    assert len(indices) == len(REDUCED_CONVS) + 2
    assert all(v.dtype == torch.uint8 for v in indices.values())


def test_saved_file_is_under_30_percent_and_reloads_identically(tmp_path):
    config = DetectorConfig(block_expansion=16, max_features=128, num_blocks=3)
    torch.manual_seed(0)
    model = build_teacher(config).eval()
    variant = codebook_variant(model, config)
    fp32_path = save_model(model, provenance_of(model), tmp_path / "fp32.pt")
    int8_path = save_variant(variant, tmp_path / "codebook.pt")
    assert int8_path.stat().st_size < 0.30 * fp32_path.stat().st_size
    reloaded = load_model(int8_path)
    images = frames(2, 64, seed=6)
    with torch.no_grad():
        want, got = variant.module(images), reloaded(images)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_cached_weight_follows_loaded_state(variant):
    module = copy.deepcopy(variant.module)
    layer = module.kp
    first = layer.weight.clone()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["kp.codebook"] = state["kp.codebook"] * 2
    module.load_state_dict(state)
    assert torch.equal(layer.weight, 2 * first)
