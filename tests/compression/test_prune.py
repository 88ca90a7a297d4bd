"""prune: structured channel pruning of the reduced teacher, exact widths and counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.errors import CompressbenchError
from compressbench.profiling import count_params
from compressbench.provenance import derive, load_model, save_variant
from tests.compression.swap_helpers import REDUCED_CONVS, REDUCED_PARAMS, lively_teacher

SIZE = 64
HOURGLASS = [name for name, _, _ in REDUCED_CONVS]


def context(with_frames: bool = True) -> CompressionContext:
    def frames(n: int) -> torch.Tensor:
        return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))

    return CompressionContext(
        frames if with_frames else None, input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False
    )


def prune(model: nn.Module, chain: str = "prune", **options):
    names = chain.split(",")
    resolved = [get_method(n).resolve(options if n == "prune" else {}) for n in names]
    return derive(model, names, resolved, context())[-1]


def widths(model: nn.Module) -> dict[str, tuple[int, int]]:
    return {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def expected_params(enc: list[int], dec: list[int], num_kp: int = 10) -> int:
    """Hand count for a 3-block hourglass with encoder widths ``enc`` and decoder widths ``dec``
    (conv3x3 + bias + BatchNorm weight/bias), plus the 7x7 kp and jacobian heads."""
    ins = [3, enc[0], enc[1], enc[2], dec[0] + enc[1], dec[1] + enc[0]]
    outs = enc + dec
    total = sum(9 * i * o + o + 2 * o for i, o in zip(ins, outs))
    head_in = dec[2] + 3
    return total + (49 * head_in * num_kp + num_kp) + (49 * head_in * 4 * num_kp + 4 * num_kp)


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def half(teacher):
    return prune(teacher, ratio=0.5)


def test_hand_count_matches_the_unpruned_teacher():
    assert expected_params([16, 32, 64], [32, 16, 8]) == REDUCED_PARAMS == 80_928


def test_uniform_half_halves_every_hourglass_conv(half):
    got = widths(half.module)
    assert [got[n][1] for n in HOURGLASS] == [8, 16, 32, 16, 8, 4]
    assert got["predictor.encoder.down_blocks.0.conv"][0] == 3  # the image keeps its 3 channels
    assert got["kp"] == (4 + 3, 10)  # last up block (pruned) + the input skip; one map per keypoint
    assert got["jacobian"] == (4 + 3, 40)
    assert count_params(half.module) == expected_params([8, 16, 32], [16, 8, 4]) == 30_916
    report = half.stages[0].report
    assert (report["params_before"], report["params_after"]) == (80_928, 30_916)
    layers = {row["layer"]: row for row in report["layers"]}
    assert (
        layers["predictor.decoder.up_blocks.1.conv"]["in_before"],
        layers["predictor.decoder.up_blocks.1.conv"]["in_after"],
    ) == (64, 32)


def test_output_shapes_unchanged(teacher, half):
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, after = teacher(x), half.module(x)
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    assert after["value"].shape == (2, 10, 2) and after["jacobian"].shape == (2, 10, 2, 2)


def test_pruned_model_equals_teacher_with_removed_channels_silenced(teacher, half):
    """Zeroing the removed channels' BatchNorm scale and shift in the teacher must give the pruned
    model's outputs exactly: this checks that the concatenation skips were cut at the right indices."""
    masked = lively_teacher()
    pruned = half.module
    with torch.no_grad():
        for name, module in masked.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                kept_scales = pruned.get_submodule(name).weight
                keep = torch.isin(module.weight, kept_scales)  # lively scales are distinct random numbers
                assert int(keep.sum()) == kept_scales.numel()
                module.weight[~keep] = 0
                module.bias[~keep] = 0
        x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
        want, got = masked(x), pruned(x)
    for key in ("value", "jacobian", "heatmap"):
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("importance", ["l1", "l2", "bn-scale", "taylor", "random"])
def test_every_importance_uniform(teacher, importance):
    variant = prune(teacher, ratio=0.5, importance=importance)
    assert count_params(variant.module) == 30_916  # uniform: widths fixed, only the choice of channels differs


@pytest.mark.parametrize("importance", ["l2", "taylor"])
def test_global_keeps_half_of_all_hourglass_channels(teacher, importance):
    variant = prune(teacher, ratio=0.5, importance=importance, global_pruning=True)
    got = widths(variant.module)
    assert sum(got[n][1] for n in HOURGLASS) == (16 + 32 + 64 + 32 + 16 + 8) // 2
    assert got["kp"][1] == 10 and got["jacobian"][1] == 40
    assert variant.stages[0].report["scope"] == "global"


def test_iterative_two_steps_reach_the_same_widths(teacher):
    variant = prune(teacher, ratio=0.5, iterative=2)
    assert [widths(variant.module)[n][1] for n in HOURGLASS] == [8, 16, 32, 16, 8, 4]
    assert variant.stages[0].report["steps"] == 2


def test_random_importance_is_seeded(teacher):
    a = prune(teacher, ratio=0.5, importance="random", global_pruning=True)
    b = prune(teacher, ratio=0.5, importance="random", global_pruning=True)
    assert widths(a.module) == widths(b.module)
    assert all(torch.equal(a.module.state_dict()[k], v) for k, v in b.module.state_dict().items())


def test_input_model_is_not_modified(teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    get_method("prune").apply(teacher, get_method("prune").resolve({"ratio": 0.3}), context())
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.1])
def test_ratio_outside_open_interval_is_rejected(ratio):
    with pytest.raises(CompressbenchError, match="ratio must be strictly between 0 and 1"):
        get_method("prune").resolve({"ratio": ratio})


def test_unknown_importance_lists_the_choices():
    with pytest.raises(CompressbenchError, match="bn-scale, l1, l2, random, taylor"):
        get_method("prune").resolve({"importance": "hessian"})


def test_zero_steps_is_rejected():
    with pytest.raises(CompressbenchError, match="iterative must be at least 1"):
        get_method("prune").resolve({"iterative": 0})


def test_taylor_without_frames_is_an_error(teacher):
    method = get_method("prune")
    with pytest.raises(CompressbenchError, match="needs frames"):
        method.apply(teacher, method.resolve({"importance": "taylor"}), context(with_frames=False))


@pytest.mark.parametrize("chain", ["prune", "exact,prune"])
def test_save_and_load_round_trip(tmp_path, teacher, chain):
    variant = prune(teacher, chain, ratio=0.5, importance="l1")
    path = save_variant(variant, tmp_path / "pruned.pt")
    loaded = load_model(path)
    assert widths(loaded) == widths(variant.module)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = variant.module(x), loaded(x)
    assert all(torch.equal(got[k], want[k]) for k in want)
