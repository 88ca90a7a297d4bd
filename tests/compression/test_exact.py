"""exact: BatchNorm folding and the strided separable anti-alias stage change no output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.compression.exact import StridedSeparableAntiAlias, _conv_bn_pairs, fold_batchnorm
from compressbench.models.heads import AntiAliasInterpolation2d
from compressbench.profiling import count_params
from compressbench.provenance import derive, load_model, save_variant
from tests.compression.swap_helpers import REDUCED_CONVS, REDUCED_PARAMS, lively_teacher

SIZE = 64
ATOL = 1e-5
CONTEXT = CompressionContext(input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False)


def exact(model: nn.Module, **options):
    resolved = get_method("exact").resolve(options)
    return derive(model, "exact", [resolved], CONTEXT)[-1]


def image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def variant(teacher):
    return exact(teacher)


@pytest.mark.parametrize(
    ("scale", "height", "width"),
    [(0.25, 256, 256), (0.25, 255, 130), (0.25, 64, 67), (0.25, 13, 9), (0.5, 64, 64), (0.5, 31, 20)],
)
def test_anti_alias_matches_fomm(scale, height, width):
    original = AntiAliasInterpolation2d(3, scale)
    rewritten = StridedSeparableAntiAlias.from_original(original)
    x = image(2, 3, height, width)
    with torch.no_grad():
        want, got = original(x), rewritten(x)
    assert got.shape == want.shape == (2, 3, int(height * scale), int(width * scale))
    assert (got - want).abs().max() < ATOL


def test_anti_alias_keeps_fomm_state_dict_and_refreshes_factors_on_load():
    original = AntiAliasInterpolation2d(3, 0.25)
    rewritten = StridedSeparableAntiAlias.from_original(original)
    assert list(rewritten.state_dict()) == ["weight"]
    assert rewritten.state_dict()["weight"].shape == (3, 1, 13, 13)
    x = image(1, 3, 64, 64)
    doubled = {"weight": 2 * original.weight}
    original.load_state_dict(doubled)
    rewritten.load_state_dict(doubled)
    with torch.no_grad():
        assert (rewritten(x) - original(x)).abs().max() < ATOL


def test_outputs_equal_the_teacher(teacher, variant):
    x = image(2, 3, SIZE, SIZE, seed=1)
    with torch.no_grad():
        want, got = teacher(x), variant.module(x)
    for key in ("value", "jacobian", "heatmap"):
        assert (got[key] - want[key]).abs().max() < ATOL, key
    report = variant.stages[0].report
    assert set(report["max_abs_diff"]) == {"value", "jacobian", "heatmap"}
    assert max(report["max_abs_diff"].values()) < ATOL


def test_every_batchnorm_is_folded(variant):
    model = variant.module
    report = variant.stages[0].report
    assert report["rewrites"] == [
        {"rewrite": "fold_bn", "applied": True, "batchnorms_folded": 6},
        {"rewrite": "anti_alias", "applied": True},
    ]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for conv_name, _, out_channels in REDUCED_CONVS:
        assert isinstance(model.get_submodule(conv_name.replace(".conv", ".norm")), nn.Identity)
        assert model.get_submodule(conv_name).bias.shape == (out_channels,)
    batchnorm_params = 2 * sum(out for _, _, out in REDUCED_CONVS)  # weight + bias per channel
    assert batchnorm_params == 336
    assert count_params(model) == report["params_after"] == REDUCED_PARAMS - 336 == 80_592
    assert isinstance(model.down, StridedSeparableAntiAlias)


def test_options_switch_rewrites_off(teacher):
    only_fold = exact(teacher, anti_alias=False)
    assert isinstance(only_fold.module.down, AntiAliasInterpolation2d)
    only_down = exact(teacher, fold_bn=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in only_down.module.modules()) == 6
    assert isinstance(only_down.module.down, StridedSeparableAntiAlias)
    assert only_down.stages[0].structure == {"folded": [], "anti_alias": True}


def test_fold_gives_a_biasless_conv_a_bias():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].weight.uniform_(0.5, 2)
        model[1].bias.uniform_(-1, 1)
    x = image(1, 3, 8, 8)
    with torch.no_grad():
        want = model(x)
        assert _conv_bn_pairs(model, x) == [("0", "1")]
        fold_batchnorm(model[0], model[1])
        got = model[0](x)
    assert model[0].bias.shape == (4,)
    assert (got - want).abs().max() < ATOL


class SharedConvOutput(nn.Module):
    """The conv output is read by the BatchNorm and by a skip: folding would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return {"out": self.norm(y) + y}


def test_conv_read_elsewhere_is_not_folded():
    assert _conv_bn_pairs(SharedConvOutput().eval(), image(1, 3, 8, 8)) == []


def test_save_and_load_round_trip(tmp_path, variant):
    path = save_variant(variant, tmp_path / "exact.pt")
    loaded = load_model(path)
    assert isinstance(loaded.down, StridedSeparableAntiAlias)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.modules())
    x = image(2, 3, SIZE, SIZE, seed=2)
    with torch.no_grad():
        want, got = variant.module(x), loaded(x)
    assert all(torch.equal(got[k], want[k]) for k in want)
