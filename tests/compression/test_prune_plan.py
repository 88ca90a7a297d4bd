"""Per-block prune ratios: the option, the latency model, the plan, and the search's screening."""

from __future__ import annotations

import math

import pytest
from torch import nn

from compressbench.compression import get_method
from compressbench.compression.prune import format_block_ratios, parse_block_ratios, prunable_blocks
from compressbench.compression.prune_plan import (
    BlockTimes,
    block_times_from_layers,
    plan_like_uniform,
    plan_ratios,
    predicted_ms,
    uniform_keep,
)
from compressbench.errors import CompressbenchError
from tests.standins import context, small_teacher

BLOCKS = ["encoder.down_blocks.0", "encoder.down_blocks.1", "encoder.down_blocks.2",
          "decoder.up_blocks.0", "decoder.up_blocks.1", "decoder.up_blocks.2"]  # fmt: skip


def widths(model: nn.Module) -> dict[str, tuple[int, int]]:
    return {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def times(conv: float = 1.0, heads: float = 1.0, fixed: float = 2.0, **override) -> BlockTimes:
    conv_ms = {name: conv for name in BLOCKS}
    conv_ms.update({k.replace("__", "."): v for k, v in override.items()})
    return BlockTimes(conv_ms, {name: 0.0 for name in BLOCKS}, heads, fixed, "torch", "fp32")


def test_block_ratios_parse_and_format_round_trip():
    text = "encoder.down_blocks.0:0.5,decoder.up_blocks.2:0"
    assert parse_block_ratios(text) == {"encoder.down_blocks.0": 0.5, "decoder.up_blocks.2": 0.0}
    assert format_block_ratios(parse_block_ratios(text)) == text
    assert parse_block_ratios("") == {}


@pytest.mark.parametrize(
    "text, fragment",
    [("x", "is not BLOCK:RATIO"), ("a:b", "'b' is not a number"), ("a:1", "must be in [0, 1)"), ("a:0.1,a:0.2", "named twice")],
)
def test_bad_block_ratios_are_one_line(text, fragment):
    with pytest.raises(CompressbenchError, match=r"prune: ratios .*" + fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        get_method("prune").resolve({"ratios": text})


def test_the_small_teacher_has_six_prunable_blocks():
    assert prunable_blocks(small_teacher()) == BLOCKS


def test_per_block_ratios_set_each_block_and_the_skips_follow():
    method = get_method("prune")
    options = method.resolve({"ratio": 0.25, "ratios": "encoder.down_blocks.0:0.5,decoder.up_blocks.2:0"})
    pruned = method.apply(small_teacher(), options, context()).module
    got = widths(pruned)
    # down 16/32/64 -> 8 (0.5), 24, 48; up 32/16/8 -> 24, 12, 8 (kept whole); up inputs concatenate the skips
    assert got["predictor.encoder.down_blocks.0.conv"] == (3, 8)
    assert got["predictor.encoder.down_blocks.1.conv"] == (8, 24)
    assert got["predictor.encoder.down_blocks.2.conv"] == (24, 48)
    assert got["predictor.decoder.up_blocks.0.conv"] == (48, 24)
    assert got["predictor.decoder.up_blocks.1.conv"] == (48, 12)
    assert got["predictor.decoder.up_blocks.2.conv"] == (20, 8)
    assert got["kp"][0] == got["jacobian"][0] == 11  # the heads read the kept 8 + the 3 image channels


def test_an_unknown_block_lists_the_known_ones():
    method = get_method("prune")
    with pytest.raises(CompressbenchError, match="not a prunable block of this model; known: encoder.down_blocks.0, "):
        method.apply(small_teacher(), method.resolve({"ratios": "encoder.down_blocks.7:0.2"}), context())


def test_the_latency_model_by_hand():
    model = small_teacher()
    # conv 1 ms each: down 0.5, 0.25, 0.25; up 0.25 x3; heads (8 * 0.5 + 3) / 11; fixed 2
    assert predicted_ms(times(), model, uniform_keep(model, 0.5)) == pytest.approx(0.5 + 0.25 * 5 + 7 / 11 + 2.0)
    assert predicted_ms(times(), model, {}) == pytest.approx(6 + 1 + 2)


def test_the_plan_prunes_where_the_time_is_and_keeps_more_capacity():
    model = small_teacher()
    t = times(conv=0.1, heads=0.1, fixed=0.0, decoder__up_blocks__2=3.0)  # the last up block holds the time
    target = predicted_ms(t, model, uniform_keep(model, 0.5))
    plan = plan_ratios(t, model, target)
    keep = {name: 1 - r for name, r in plan.items()}
    assert predicted_ms(t, model, keep) <= target + 1e-9
    assert plan["decoder.up_blocks.2"] == max(plan.values())
    assert sum(math.log(k) for k in keep.values()) > sum(math.log(0.5) for _ in BLOCKS)
    assert plan_like_uniform(t, model, 0.5) == plan


def test_block_times_fold_the_profile_rows():
    rows = [
        {"block": "downblock_1", "op": "conv", "latency_ms": 0.5}, {"block": "downblock_1", "op": "avgpool", "latency_ms": 0.25},
        {"block": "upblock_3", "op": "conv", "latency_ms": 1.0}, {"block": "jacobian", "op": "conv", "latency_ms": 2.0},
        {"block": "jacobian", "op": "reducesum", "latency_ms": 0.125}, {"block": "anti_alias", "op": "conv", "latency_ms": 4.0},
    ]  # fmt: skip
    t = block_times_from_layers(rows, small_teacher(), "openvino", "int8")
    assert t.conv_ms["encoder.down_blocks.0"] == 0.5 and t.other_ms["encoder.down_blocks.0"] == 0.25
    assert t.conv_ms["decoder.up_blocks.2"] == 1.0
    assert (t.heads_ms, t.fixed_ms, t.total_ms) == (2.0, 4.125, 7.875)


def test_a_predictor_without_hourglass_blocks_is_refused():
    model = small_teacher()
    model.predictor = nn.Identity()
    with pytest.raises(CompressbenchError, match="latency-aware pruning plans FOMM's hourglass"):
        predicted_ms(times(), model, {})
