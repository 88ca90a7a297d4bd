"""The search's latency-aware candidates, its screening before training, where it runs by default,
and the record of where its time went."""

from __future__ import annotations

import pytest

from compressbench import variant_search
from compressbench.variant_search import Candidate, SearchOptions, planned_candidates, screen, search, shipping_runtime
from tests.compression.test_recover import calibrated_teacher
from tests.test_variant_search import stage


def test_planned_candidates_carry_their_block_ratios_and_every_tail():
    got = planned_candidates(("prune", "exact", "recover"), {0.5: {"encoder.down_blocks.0": 0.25, "decoder.up_blocks.2": 0.8}})
    assert [c.name for c in got] == ["prune-lat-0.5", "prune-lat-0.5+exact"]
    assert got[0].stages[0]["options"]["ratios"] == "encoder.down_blocks.0:0.25,decoder.up_blocks.2:0.8"
    assert planned_candidates(("prune", "exact"), {0.5: {}}) == []  # nothing to recover them with


def test_screening_drops_a_pruned_skeleton_beaten_on_latency_and_parameters():
    a = Candidate("prune-0.5", (stage("prune", ratio=0.5),))
    b = Candidate("prune-lat-0.5", (stage("prune", ratio=0.5, ratios="encoder.down_blocks.0:0.2"),))
    c = Candidate("prune-lat-0.5+exact", (*b.stages, stage("exact")))  # another tail: not compared with a or b
    d = Candidate("asym-0.5", (stage("asym", rank_ratio=0.5),))  # not pruned: never screened
    latency = {"prune-0.5": 2.0, "prune-lat-0.5": 1.5, "prune-lat-0.5+exact": 9.0, "asym-0.5": 9.0}
    spread = {"prune-0.5": (1.9, 2.2), "prune-lat-0.5": (1.4, 1.6), "prune-lat-0.5+exact": (8.0, 9.5), "asym-0.5": (8.0, 9.5)}
    params = {"prune-0.5": 100, "prune-lat-0.5": 120, "prune-lat-0.5+exact": 1, "asym-0.5": 1}
    kept, log = screen([a, b, c, d], latency, params, spread)
    assert [k.name for k in kept] == ["prune-lat-0.5", "prune-lat-0.5+exact", "asym-0.5"]
    assert log == [{"candidate": "prune-0.5", "steps": 0, "skipped": (
        "screened before training: prune-lat-0.5 is faster beyond the probe's spread (p90 1.600 ms below p10 1.900 ms) "
        "with as many or more parameters (120 vs 100)")}]  # fmt: skip
    # faster by the median, but inside the spread: the probe cannot tell them apart, so both train
    overlapping = {**spread, "prune-lat-0.5": (1.4, 1.95)}
    kept, log = screen([a, b], latency, params, overlapping)
    assert len(kept) == 2 and log == []
    # faster beyond the spread but with fewer parameters: not dominated
    kept, log = screen([a, b], latency, {**params, "prune-lat-0.5": 99}, spread)
    assert len(kept) == 2 and log == []
    # a skeleton the runtime cannot run (infinite latency) is neither screened nor screens
    inf = float("inf")
    kept, log = screen([a, b], {"prune-0.5": inf, "prune-lat-0.5": inf}, params, {"prune-0.5": (inf, inf), "prune-lat-0.5": (inf, inf)})
    assert len(kept) == 2 and log == []


def test_the_search_runs_where_users_ship_by_default(monkeypatch):
    installed = {"openvino": True, "onnxruntime": True}
    monkeypatch.setattr(variant_search, "_installed", lambda name: installed.get(name, True))
    assert shipping_runtime() == ("openvino", "int8")
    resolved = SearchOptions().resolved()
    assert (resolved.runtime, resolved.precision, resolved.fronts_on) == ("openvino", "int8", ("onnxruntime",))
    named = SearchOptions(runtime="onnxruntime").resolved()
    assert (named.runtime, named.precision, named.fronts_on) == ("onnxruntime", "fp32", ("openvino",))
    installed["openvino"] = False
    assert shipping_runtime() == ("onnxruntime", "int8")
    assert SearchOptions().resolved().fronts_on == ()
    installed["onnxruntime"] = False
    assert shipping_runtime() == ("torch", "fp32")
    assert SearchOptions(fronts_on=()).resolved().fronts_on == ()


@pytest.fixture(scope="module")
def planned_search(tmp_path_factory):
    options = SearchOptions(
        max_akd=40.0, budget="10m", frames=4, size=64, min_steps=2, max_steps=2, val_frames=8, warmup=0, repeats=2,
        methods=("prune", "recover"), recover={"pool": 16, "batch": 4, "val_frames": 8, "val_every": 2, "lr": 1e-3},
        cache=tmp_path_factory.mktemp("cache"), progress=False, runtime="torch", precision="fp32", fronts_on=("onnxruntime",),
    )  # fmt: skip
    record, _ = search(calibrated_teacher(), options)
    return record


def test_a_default_search_plans_per_block_candidates_from_measured_block_times(planned_search):
    record = planned_search
    assert sorted(record["plans"]) == ["prune-lat-0.5", "prune-lat-0.7", "prune-lat-0.8"]
    assert record["block_times"]["runtime"] == "torch"
    assert set(record["block_times"]["conv_ms"]) == {
        "encoder.down_blocks.0", "encoder.down_blocks.1", "encoder.down_blocks.2",
        "decoder.up_blocks.0", "decoder.up_blocks.1", "decoder.up_blocks.2",
    }  # fmt: skip
    considered = {r["variant"] for r in record["rows"][1:]} | {e["candidate"] for e in record["log"]}
    assert {"prune-lat-0.5", "prune-lat-0.7", "prune-lat-0.8", "prune-0.3", "prune-0.5", "prune-0.7"} <= considered


def test_the_record_says_where_the_time_went(planned_search):
    split = planned_search["budget_split"]
    assert set(split) == {"screening_s", "training_s", "precision_s", "timing_s"}
    assert split["precision_s"] == 0 and all(v > 0 for k, v in split.items() if k != "precision_s"), split  # torch: no pass
    assert planned_search["spent_s"] == pytest.approx(split["screening_s"] + split["training_s"])


def test_the_front_is_measured_on_the_other_runtimes_too(planned_search):
    elsewhere = planned_search["runtime_fronts"]["onnxruntime fp32"]
    assert set(elsewhere["front"]) <= set(planned_search["front"])
    assert elsewhere["rows"][0]["variant"] == planned_search["rows"][0]["variant"]  # the teacher first, as everywhere


def test_with_stem_allowed_every_pruned_head_also_gets_the_learned_input_stage():
    from compressbench.variant_search import default_candidates

    names = [c.name for c in default_candidates(("prune", "stem", "recover"))]
    assert names == ["prune-0.3", "prune-0.5", "prune-0.7", "prune-0.3+stem", "prune-0.5+stem", "prune-0.7+stem", "stem"]
    lat = planned_candidates(("prune", "stem", "recover"), {0.7: {}})
    assert [c.name for c in lat] == ["prune-lat-0.7", "prune-lat-0.7+stem"]
    assert [s["method"] for s in lat[1].stages] == ["prune", "stem"]


def test_with_heads_allowed_every_pruned_head_also_gets_the_smaller_heads_and_both_ends():
    from compressbench.variant_search import default_candidates

    names = [c.name for c in default_candidates(("prune", "heads", "recover"))]
    assert names == ["prune-0.3", "prune-0.5", "prune-0.7", "prune-0.3+heads", "prune-0.5+heads", "prune-0.7+heads"]
    lat = planned_candidates(("prune", "stem", "heads", "recover", "exact"), {0.8: {}})
    assert [c.name for c in lat] == [
        "prune-lat-0.8", "prune-lat-0.8+exact", "prune-lat-0.8+stem", "prune-lat-0.8+stem+exact", "prune-lat-0.8+heads",
        "prune-lat-0.8+heads+exact", "prune-lat-0.8+stem+heads", "prune-lat-0.8+stem+heads+exact",
    ]  # fmt: skip
    assert [s["method"] for s in lat[-1].stages] == ["prune", "stem", "heads", "exact"]
    assert lat[-1].stages[2]["options"] == {"kernel": 5, "which": "both", "init": "fit"}


def test_of_two_heads_that_differ_only_by_the_stem_the_faster_family_trains():
    from compressbench.variant_search import one_per_end_sibling

    plain = Candidate("prune-0.7", (stage("prune", ratio=0.7),))
    plain_exact = Candidate("prune-0.7+exact", (*plain.stages, stage("exact")))
    stem = Candidate("prune-0.7+stem", (*plain.stages, stage("stem")))
    stem_exact = Candidate("prune-0.7+stem+exact", (*stem.stages, stage("exact")))
    alone = Candidate("stem", (stage("stem"),))  # its sibling is the untrained model: never paired
    other = Candidate("prune-0.5", (stage("prune", ratio=0.5),))  # no sibling: kept
    given = [plain, plain_exact, stem, stem_exact, alone, other]
    # each family's fastest tail decides: the stem's 0.70 beats the plain 0.75, though its bare tail is slower
    latency = {"prune-0.7": 1.5, "prune-0.7+exact": 0.75, "prune-0.7+stem": 0.9, "prune-0.7+stem+exact": 0.70, "stem": 2.0, "prune-0.5": 1.0}
    kept, log = one_per_end_sibling(given, latency)
    assert [c.name for c in kept] == ["prune-0.7+stem", "prune-0.7+stem+exact", "stem", "prune-0.5"]
    assert [e["candidate"] for e in log] == ["prune-0.7", "prune-0.7+exact"]
    assert log[0] == {"candidate": "prune-0.7", "steps": 0, "skipped": (
        "screened before training: its sibling prune-0.7+stem+exact is faster on the probe (0.700 vs 0.750 ms, each family's "
        "fastest tail) and they recover alike, so one of them trains")}  # fmt: skip
    # the plain family faster: the stem's is dropped; a tie keeps the plain one (fewer stages)
    kept, log = one_per_end_sibling(given, {**latency, "prune-0.7+stem+exact": 0.8})
    assert [c.name for c in kept] == ["prune-0.7", "prune-0.7+exact", "stem", "prune-0.5"]
    kept, _ = one_per_end_sibling(given, {**latency, "prune-0.7+stem+exact": 0.75})
    assert [c.name for c in kept][:2] == ["prune-0.7", "prune-0.7+exact"]
    # a family the runtime cannot run loses to one it can; two it cannot run are both left alone
    inf = float("inf")
    kept, _ = one_per_end_sibling([plain, stem], {"prune-0.7": inf, "prune-0.7+stem": 1.0})
    assert [c.name for c in kept] == ["prune-0.7+stem"]
    kept, log = one_per_end_sibling([plain, stem], {"prune-0.7": inf, "prune-0.7+stem": inf})
    assert len(kept) == 2 and log == []


def test_the_smaller_heads_are_not_assumed_to_recover_alike():
    from compressbench.variant_search import one_per_end_sibling

    plain = Candidate("prune-0.7", (stage("prune", ratio=0.7),))
    heads = Candidate("prune-0.7+heads", (*plain.stages, stage("heads")))
    both = Candidate("prune-0.7+stem+heads", (*plain.stages, stage("stem"), stage("heads")))
    kept, log = one_per_end_sibling([plain, heads, both], {"prune-0.7": 1.0, "prune-0.7+heads": 0.9, "prune-0.7+stem+heads": 0.8})
    # +heads and +stem+heads are siblings by the stem; prune-0.7 is no sibling of either
    assert [c.name for c in kept] == ["prune-0.7", "prune-0.7+stem+heads"] and [e["candidate"] for e in log] == ["prune-0.7+heads"]
