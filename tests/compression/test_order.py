"""Chain order: BatchNorm folding (exact) runs after channel pruning, as the README documents."""

from __future__ import annotations

import pytest
import torch

from compressbench.compression import CompressionContext, get_method
from compressbench.compression.order import order_stages
from compressbench.errors import CompressbenchError
from compressbench.provenance import derive
from tests.compression.swap_helpers import frames, lively_teacher

SIZE = 64
QUIET = CompressionContext(input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False)


def resolved(chain: list[str], **per_method) -> list[dict]:
    return [get_method(name).resolve(per_method.get(name, {})) for name in chain]


def test_folding_moves_after_the_last_pruning_stage_that_follows_it():
    chain = ["exact", "prune", "quantize"]
    names, options, notes = order_stages(chain, resolved(chain))
    assert names == ["prune", "exact", "quantize"]
    assert options[0]["ratio"] == 0.5 and options[1]["fold_bn"] is True
    assert list(notes) == [1] and "exact runs after prune (chain run as prune,exact,quantize)" in notes[1]["reordered"]


@pytest.mark.parametrize(
    "chain, given",
    [
        (["prune", "exact"], {}),  # already in order
        (["exact", "quantize"], {}),  # nothing scores channels
        (["exact", "prune"], {"exact": {"fold_bn": False}}),  # nothing folded
        (["exact", "prune"], {"prune": {"importance": "random"}}),  # the draw ignores BatchNorm
    ],
)
def test_chains_that_need_no_reordering_keep_their_order(chain, given):
    names, _, notes = order_stages(chain, resolved(chain, **given))
    assert names == chain and notes == {}


def test_exact_then_prune_gives_the_outputs_of_prune_then_exact():
    teacher = lively_teacher()
    asked = derive(teacher, ["exact", "prune"], resolved(["exact", "prune"]), QUIET)
    ordered = derive(teacher, ["prune", "exact"], resolved(["prune", "exact"]), QUIET)
    assert [v.name for v in asked] == ["teacher+prune", "teacher+prune+exact"]
    assert "reordered" in asked[-1].stages[-1].report
    x = frames(2, SIZE)
    with torch.no_grad():
        got, want = asked[-1].module(x), ordered[-1].module(x)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_bn_scale_importance_on_a_folded_model_is_refused():
    teacher = lively_teacher()
    folded = derive(teacher, ["exact"], resolved(["exact"]), QUIET)[-1].module
    method = get_method("prune")
    with pytest.raises(CompressbenchError, match="bn-scale needs BatchNorm layers"):
        method.apply(folded, method.resolve({"importance": "bn-scale"}), QUIET)
