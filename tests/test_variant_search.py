"""search on a tiny teacher: a non-dominated front within the bound, resumable, bad input refused."""

from __future__ import annotations

import types

import pytest

from compressbench.compression import get_method
from compressbench.errors import CompressbenchError
from compressbench.variant_search import (
    Candidate,
    SearchOptions,
    Trial,
    default_candidates,
    pareto_front,
    parse_budget,
    rank,
    search,
)
from tests.compression.test_recover import calibrated_teacher

RECOVER = {"pool": 16, "batch": 4, "val_frames": 8, "val_every": 2, "lr": 1e-3}


def stage(method: str, **options) -> dict:
    return {"method": method, "options": get_method(method).resolve(options)}


CANDIDATES = [
    Candidate("exact", (stage("exact"),)),
    Candidate("prune-0.3", (stage("prune", ratio=0.3),)),
    Candidate("prune-0.6", (stage("prune", ratio=0.6),)),
    Candidate("prune-0.6+exact", (stage("prune", ratio=0.6), stage("exact"))),
]


def options(tmp_path, **extra) -> SearchOptions:
    given = dict(
        max_akd=40.0, budget="10m", frames=4, size=64, min_steps=2, max_steps=4, recover=RECOVER, val_frames=8,
        warmup=0, repeats=2, cache=tmp_path / "cache", progress=False, runtime="torch", precision="fp32", fronts_on=(),
    )  # fmt: skip
    return SearchOptions(**{**given, **extra})


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    record, winner = search(calibrated_teacher(), options(folder), None, CANDIDATES)
    return folder, record, winner


def test_the_front_is_non_dominated_and_the_winner_is_the_fastest_within_the_bound(first):
    _, record, winner = first
    rows = {row["variant"]: row for row in record["rows"][1:]}
    front = [rows[name] for name in record["front"]]
    assert front and all(
        not (o["latency_ms"] <= r["latency_ms"] and o["akd_px"] <= r["akd_px"] and o is not r and (o["latency_ms"], o["akd_px"]) != (r["latency_ms"], r["akd_px"]))
        for r in front for o in rows.values()
    )  # fmt: skip
    within = [r for r in rows.values() if r["akd_px"] <= 40.0]
    assert record["winner"] == min(within, key=lambda r: r["latency_ms"])["variant"] == winner.name
    assert rows["exact"]["recover_steps"] == 0 and rows["exact"]["akd_px"] < 1e-3
    trained = [name for name, row in rows.items() if row["recover_steps"]]
    assert all(row["recover_steps"] in (2, 4) for row in rows.values() if row["recover_steps"])
    assert {rows[n]["recovered_by"] for n in trained} <= set(record["trained"])
    assert all(rows[n]["recovered_by"].endswith(f"@{rows[n]['recover_steps']}") for n in trained)


def test_a_head_and_its_train_free_tail_share_one_recovery(tmp_path):
    # a bound none meets: nothing is skipped for latency, so both candidates reach training
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1e-3), None, CANDIDATES[2:])
    rows = {row["variant"]: row for row in record["rows"][1:]}
    first, survivor = record["trained"]  # one recovery of prune-0.6 per step count, not one per tail
    assert first.endswith("@2") and survivor.endswith("@4")  # the lone surviving head goes on from its weights
    # halving keeps a head with its tails: both go on, on the one recovery
    assert [row["recover_steps"] for row in rows.values()] == [4, 4]
    assert {row["recovered_by"] for row in rows.values()} == {survivor}


def test_a_survivor_goes_on_from_its_own_weights_one_recover_stage_per_round(tmp_path):
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1e-3, max_steps=6), None, CANDIDATES[2:3])
    assert record["trained"] == ["prune-0.6@2", "prune-0.6@6"]  # 2 steps, then 4 more from those weights
    (row,) = record["rows"][1:]
    assert row["recover_steps"] == 6 and row["recovered_by"] == "prune-0.6@6"
    stages = record["front_chains"]["prune-0.6"]["stages"]
    assert [(s["method"], s["options"].get("steps")) for s in stages] == [("prune", None), ("recover", 2), ("recover", 4)]
    assert [(e.get("steps"), e.get("total_steps"), e.get("skipped")) for e in record["log"]] == [
        (2, 2, None), (4, 6, None), (8, None, "reached --max-steps"),
    ]  # fmt: skip


def test_search_rounds_train_their_whole_schedule_unless_told_otherwise():
    candidate = CANDIDATES[1]
    (default,) = [s for s in candidate.with_recover([100], {}) if s["method"] == "recover"]
    assert default["options"]["patience"] == 0 and default["options"]["steps"] == 100  # no early stop
    (given,) = [s for s in candidate.with_recover([100], {"patience": 3}) if s["method"] == "recover"]
    assert given["options"]["patience"] == 3


def test_rounds_that_continue_run_at_a_fraction_of_the_lr_with_a_warmup():
    recovers = [s["options"] for s in CANDIDATES[1].with_recover([100, 200, 400], {"lr": 1e-3}) if s["method"] == "recover"]
    assert [o["steps"] for o in recovers] == [100, 200, 400]
    assert [o["lr"] for o in recovers] == pytest.approx([1e-3, 3e-4, 3e-4])
    assert [o["warmup"] for o in recovers] == [0, 20, 40]
    assert all(o["patience"] == 0 for o in recovers)


def trial(name: str, akd: float, ms: float) -> Trial:
    return Trial(Candidate(name), 100, None, akd, ms)


def scripted_search(tmp_path, monkeypatch, scripted: dict) -> dict:
    """A search of prune-0.3 (5 ms) and prune-0.6 (3 ms) whose validation AKD after N recover steps
    is ``scripted[(name, N)]``, bound 1 px, at most 8 steps each."""
    from compressbench import variant_search as search_module

    def score(self, variant):
        steps = sum(st.options["steps"] for st in variant.provenance.stages if st.method == "recover")
        return scripted[(variant.name, steps)]

    monkeypatch.setattr(search_module._Search, "score", score)
    monkeypatch.setattr(search_module._Search, "latencies", lambda self, variants: {"__teacher__": 10.0, "prune-0.3": 5.0, "prune-0.6": 3.0})
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1.0, max_steps=8), None, CANDIDATES[1:3])
    return record


def test_halving_ranks_near_ties_by_speed_and_the_rest_by_agreement():
    trials = [trial("best", 2.0, 5.0), trial("near-fast", 2.19, 3.0), trial("far-fastest", 2.3, 1.0), trial("near-slow", 2.1, 6.0)]
    # within 10% of 2.0 px (<= 2.2): fastest first; 2.3 px is outside, after them whatever its speed
    assert [t.candidate.name for t in rank(trials)] == ["near-fast", "best", "near-slow", "far-fastest"]
    assert rank([]) == []


def test_a_near_tie_after_the_first_round_goes_to_the_faster_candidate(tmp_path, monkeypatch):
    scripted = {("prune-0.3", 2): 2.0, ("prune-0.6", 2): 2.1, ("prune-0.6", 6): 1.5, ("prune-0.6", 8): 1.2}
    record = scripted_search(tmp_path, monkeypatch, scripted)
    # prune-0.6 is 5% behind prune-0.3 after round 1 and faster: it is the one that trains on
    assert record["trained"] == ["prune-0.6@2", "prune-0.3@2", "prune-0.6@6", "prune-0.6@8"]


def test_once_the_survivor_is_within_the_bound_a_faster_dropped_candidate_goes_on(tmp_path, monkeypatch):
    scripted = {("prune-0.3", 2): 2.0, ("prune-0.6", 2): 3.0, ("prune-0.3", 6): 0.97, ("prune-0.3", 8): 0.5, ("prune-0.6", 8): 0.8}
    record = scripted_search(tmp_path, monkeypatch, scripted)
    # round 1: both; halving keeps prune-0.3 (2.0 px), within the bound but not 5% inside it after round 2
    # (0.97 px), so it goes on; settled after round 3 (0.5 px), training cannot make it faster, so prune-0.6
    # (faster, dropped at 3.0 px) continues from its 2 steps, up to --max-steps
    assert record["trained"] == ["prune-0.6@2", "prune-0.3@2", "prune-0.3@6", "prune-0.3@8", "prune-0.6@8"]
    rows = {row["variant"]: row for row in record["rows"][1:]}
    assert (rows["prune-0.3"]["recover_steps"], rows["prune-0.6"]["recover_steps"]) == (8, 8)
    assert rows["prune-0.6"]["val_akd_px"] == 0.8


def test_halving_keeps_a_head_with_all_its_tails(tmp_path, monkeypatch):
    from compressbench import variant_search as search_module

    scripted = {
        ("prune-0.3", 2): 2.0, ("prune-0.6", 2): 3.0, ("prune-0.6+exact", 2): 2.05,
        ("prune-0.6", 6): 0.5, ("prune-0.6+exact", 6): 0.5, ("prune-0.6", 8): 0.4, ("prune-0.6+exact", 8): 0.4,
    }  # fmt: skip

    def score(self, variant):
        return scripted[(variant.name, sum(st.options["steps"] for st in variant.provenance.stages if st.method == "recover"))]

    monkeypatch.setattr(search_module._Search, "score", score)
    latencies = {"__teacher__": 10.0, "prune-0.3": 5.0, "prune-0.6": 2.8, "prune-0.6+exact": 2.9}
    monkeypatch.setattr(search_module._Search, "latencies", lambda self, variants: latencies)
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1.0, max_steps=8), None, CANDIDATES[1:4])
    # round 1 ranks prune-0.6+exact first, prune-0.3, then its head prune-0.6 (3.0 px): halving the
    # candidates would keep the tail alone and leave its head behind at 2 steps; halving the heads keeps
    # both, and they share every round's training
    assert record["trained"] == ["prune-0.6@2", "prune-0.3@2", "prune-0.6+exact@6", "prune-0.6@8"]
    rows = {row["variant"]: row for row in record["rows"][1:]}
    # round 2 took the head with its tail, on one recovery; in round 3 the tail, slower than its own head
    # within the bound, cannot win and stays
    assert [e["candidate"] for e in record["log"] if e.get("total_steps") == 6] == ["prune-0.6+exact", "prune-0.6"]
    assert (rows["prune-0.6+exact"]["recover_steps"], rows["prune-0.6+exact"]["recovered_by"]) == (6, "prune-0.6+exact@6")
    assert (rows["prune-0.6"]["recover_steps"], rows["prune-0.6"]["recovered_by"]) == (8, "prune-0.6@8")
    assert rows["prune-0.3"]["recover_steps"] == 2


def test_once_curves_are_drawn_the_fastest_head_predicted_to_reach_the_bound_gets_the_budget(tmp_path, monkeypatch):
    from compressbench import variant_search as search_module

    scripted = {
        ("prune-0.7", 2): 4.0, ("prune-0.6", 2): 2.5, ("prune-0.3", 2): 3.0, ("prune-0.2", 2): 2.0,
        ("prune-0.2", 6): 1.2, ("prune-0.6", 6): 1.5, ("prune-0.6", 14): 0.9, ("prune-0.7", 16): 3.0,
    }  # fmt: skip

    def score(self, variant):
        return scripted[(variant.name, sum(st.options["steps"] for st in variant.provenance.stages if st.method == "recover"))]

    monkeypatch.setattr(search_module._Search, "score", score)
    latencies = {"__teacher__": 10.0, "prune-0.2": 6.0, "prune-0.3": 5.0, "prune-0.6": 3.0, "prune-0.7": 2.0}
    monkeypatch.setattr(search_module._Search, "latencies", lambda self, variants: latencies)
    candidates = [Candidate(f"prune-{r}", (stage("prune", ratio=r),)) for r in (0.2, 0.3, 0.6, 0.7)]
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1.0, max_steps=16), None, candidates)
    # round 1: all four; halving keeps prune-0.2 (2.0 px) and prune-0.6 (2.5). After round 2 halving would
    # keep prune-0.2 (1.2 px against 1.5), but prune-0.6's curve (2.5 -> 1.5 px over 2 -> 6 steps) reaches
    # 0.95 px within the budget and it is faster: it trains on, and gets there (0.9 px at 14 steps)
    assert record["trained"] == ["prune-0.7@2", "prune-0.6@2", "prune-0.3@2", "prune-0.2@2", "prune-0.2@6", "prune-0.6@6",
                                 "prune-0.6@14", "prune-0.7@16"]  # fmt: skip
    (bet,) = [e for e in record["log"] if "bet" in e]
    assert bet["candidate"] == "prune-0.6" and bet["steps"] == 50  # 10 steps predicted, rounded up to one unit
    assert bet["bet"].endswith("the fastest that fits; halving would have kept prune-0.2")
    rows = {row["variant"]: row for row in record["rows"][1:]}
    assert (rows["prune-0.6"]["recover_steps"], rows["prune-0.6"]["val_akd_px"]) == (14, 0.9)
    assert (rows["prune-0.2"]["recover_steps"], rows["prune-0.2"]["val_akd_px"]) == (6, 1.2)


def test_the_last_round_trains_what_the_budget_has_left(tmp_path, monkeypatch):
    from compressbench import variant_search as search_module

    original = search_module._Search._recovered

    def one_second_per_step(self, candidate, head):  # a clock that does not depend on the machine
        trained, seconds, reused = original(self, candidate, head)
        return trained, 0.0 if reused else float(head[-1]["options"]["steps"]), reused

    monkeypatch.setattr(search_module._Search, "_recovered", one_second_per_step)
    # the screening before training is paid from the budget too: a stopped clock makes it free here
    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: 0.0))
    monkeypatch.setattr(search_module._Search, "score", lambda self, v: 100.0 / sum(
        st.options["steps"] for st in v.provenance.stages if st.method == "recover"))  # every round helps
    given = options(tmp_path, cache=None, max_akd=1e-3, budget="20s", max_steps=64)
    record, _ = search(calibrated_teacher(), given, None, CANDIDATES[2:3])
    # 2 + 4 + 8 steps spend 14 s; 16 more do not fit in the 6 s left, so the last round trains 6
    assert record["trained"] == ["prune-0.6@2", "prune-0.6@6", "prune-0.6@14", "prune-0.6@20"]
    assert record["spent_s"] == 20.0 and record["log"][-1]["skipped"] == "budget"


def test_a_round_that_leaves_a_candidate_worse_keeps_its_earlier_weights(tmp_path, monkeypatch):
    from compressbench import variant_search as search_module

    scripted = {2: 5.0, 6: 4.0, 8: 4.5}  # the third round (2 steps, capped by --max-steps) makes it worse

    def score(self, variant):
        return scripted[sum(st.options["steps"] for st in variant.provenance.stages if st.method == "recover")]

    monkeypatch.setattr(search_module._Search, "score", score)
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1.0, max_steps=8), None, CANDIDATES[2:3])
    assert record["trained"] == ["prune-0.6@2", "prune-0.6@6", "prune-0.6@8"]
    (row,) = record["rows"][1:]
    assert (row["recover_steps"], row["val_akd_px"], row["recovered_by"]) == (6, 4.0, "prune-0.6@6")
    assert record["log"][2]["kept"] == "the weights after 6 steps (validation 4.000 px)"
    assert len(record["log"]) == 3  # no round after the undone one: its training stopped paying
    stages = record["front_chains"]["prune-0.6"]["stages"]
    assert [s["options"].get("steps") for s in stages if s["method"] == "recover"] == [2, 4]


def test_a_candidate_whose_round_was_undone_gives_its_turn_to_a_faster_dropped_one(tmp_path, monkeypatch):
    scripted = {("prune-0.3", 2): 2.0, ("prune-0.6", 2): 3.0, ("prune-0.3", 6): 2.5, ("prune-0.6", 8): 1.5}
    record = scripted_search(tmp_path, monkeypatch, scripted)
    # halving keeps prune-0.3 (2.0 px); its next round leaves it worse (2.5 px), so it is undone and
    # the turn goes to prune-0.6 (faster, dropped at 3.0 px), continued from its 2 steps up to --max-steps
    assert record["trained"] == ["prune-0.6@2", "prune-0.3@2", "prune-0.3@6", "prune-0.6@8"]
    rows = {row["variant"]: row for row in record["rows"][1:]}
    assert (rows["prune-0.3"]["recover_steps"], rows["prune-0.3"]["val_akd_px"]) == (2, 2.0)
    assert (rows["prune-0.6"]["recover_steps"], rows["prune-0.6"]["val_akd_px"]) == (8, 1.5)
    assert [e["candidate"] for e in record["log"] if "kept" in e] == ["prune-0.3"]


def test_a_second_run_reuses_every_finished_candidate(first):
    folder, record, _ = first
    again, _ = search(calibrated_teacher(), options(folder), None, CANDIDATES)
    assert not set(again["trained"]) & set(record["trained"])
    repeated = {row["variant"]: row["val_akd_px"] for row in again["rows"][1:]}
    for row in record["rows"][1:]:
        if row["variant"] in repeated and row["recover_steps"]:
            assert repeated[row["variant"]] == row["val_akd_px"]  # same weights from the cache


def test_the_front_suite_reads_back_as_the_fronts_chains(first, tmp_path):
    from compressbench.compression import parse_chain, stage_options
    from compressbench.suite import read_suite
    from compressbench.variant_search import front_suite

    _, record, _ = first
    path = tmp_path / "front.toml"
    path.write_text(front_suite(record, {"model": "teacher", "config": "reduced.yaml"}, options(tmp_path)))
    suite = read_suite(path)
    assert [v.name for v in suite.variants] == ["teacher", *record["front"]]
    assert suite.measure["input_size"] == 64 and suite.measure["repeats"] == 2 and suite.measure["frames"] == 4
    for spec in suite.variants[1:]:
        stages = record["front_chains"][spec.name]["stages"]
        chain = parse_chain(spec.method)
        assert chain == [s["method"] for s in stages] and spec.config == "reduced.yaml"
        assert stage_options(chain, {}, spec.set) == [s["options"] for s in stages]  # same options, same steps
    assert any("recover" in (spec.method or "") for spec in suite.variants) == any(
        row["recover_steps"] for row in record["rows"][1:] if row["variant"] in record["front"]
    )


def test_pareto_front_by_hand():
    rows = [
        {"variant": "a", "latency_ms": 1.0, "akd_px": 5.0},
        {"variant": "b", "latency_ms": 2.0, "akd_px": 1.0},
        {"variant": "c", "latency_ms": 2.0, "akd_px": 2.0},  # dominated by b
        {"variant": "d", "latency_ms": 3.0, "akd_px": 0.5},
        {"variant": "e", "latency_ms": 4.0, "akd_px": 0.5},  # dominated by d
    ]
    assert [r["variant"] for r in pareto_front(rows)] == ["a", "b", "d"]


@pytest.mark.parametrize("text, seconds", [("90s", 90.0), ("60m", 3600.0), ("1.5h", 5400.0), ("45", 45.0)])
def test_budgets(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"max_akd": 0}, "--max-akd must be a positive number"),
        ({"budget": "0m"}, "--budget must be a positive duration"),
        ({"budget": "soon"}, "--budget 'soon' is not a duration"),
        ({"methods": ("prune", "nosuch")}, "unknown compression method 'nosuch' in the candidates"),
        ({"runtime": "tensorrt"}, "unknown runtime 'tensorrt'"),
        ({"precision": "int4"}, "int4"),
        ({"recover": {**RECOVER, "warmup": 3}}, r"recover.warmup 3 is longer than the first round \(--min-steps 2\)"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, extra, message):
    with pytest.raises(CompressbenchError, match=message):
        search(calibrated_teacher(), options(tmp_path, **extra), None, CANDIDATES)
    assert not (tmp_path / "cache").exists()


def test_default_candidates_follow_the_allowed_methods():
    names = [c.name for c in default_candidates(("prune", "exact", "recover"))]
    assert names == ["prune-0.3", "prune-0.3+exact", "prune-0.5", "prune-0.5+exact", "prune-0.7", "prune-0.7+exact", "exact"]
    assert [c.name for c in default_candidates(("prune", "exact"))] == ["exact"]  # no recover: pruning is not worth trying


def test_ctrl_c_during_training_stops_and_measures_what_it_has(tmp_path, monkeypatch):
    from compressbench import variant_search as search_module

    original = search_module._Search.build
    calls = {"trainings": 0}

    def interrupting(self, candidate, stages):
        if any(s["method"] == "recover" for s in stages):
            calls["trainings"] += 1
            if calls["trainings"] == 2:
                raise KeyboardInterrupt
        return original(self, candidate, stages)

    monkeypatch.setattr(search_module._Search, "build", interrupting)
    # structural candidates only and a bound none meets: each is worth training, none is skipped for latency
    record, _ = search(calibrated_teacher(), options(tmp_path, cache=None, max_akd=1e-3), None, CANDIDATES[1:])
    assert record["interrupted"] is True and len(record["trained"]) == 1
    assert [row["variant"] for row in record["rows"][1:]] == [record["trained"][0].split("@")[0]]
    assert record["winner"] is None


def test_the_cache_key_follows_the_teachers_weights():
    from compressbench.variant_search import teacher_key
    from tests.compression.swap_helpers import lively_teacher

    assert teacher_key(lively_teacher()) == teacher_key(lively_teacher()) != teacher_key(lively_teacher(seed=1))


def test_candidates_are_timed_and_measured_on_the_runtime_asked_for(tmp_path):
    pytest.importorskip("openvino")
    record, winner = search(
        calibrated_teacher(), options(tmp_path, runtime="openvino", precision="int8"), None, CANDIDATES[:2]
    )
    assert (record["runtime"], record["precision"]) == ("openvino", "int8")
    assert set(record["runs"]) == {row["variant"] for row in record["rows"]} >= {"teacher", "exact"}
    assert all(run["runtime"] == "openvino" and run["precision_used"] == "int8" for run in record["runs"].values())
    assert winner is not None and record["winner"] == winner.name


def _budget_set(monkeypatch, step_s: float, pool_s: float = 0.0):
    """A search whose clock is one second per recover step and whose probe says ``step_s`` s per step
    (``pool_s`` to label a pool), with one-step rounding, so the budget-set schedule can be worked out by hand."""
    from compressbench import search_schedule
    from compressbench import variant_search as search_module
    from compressbench.distillation.finetune import StepCost

    original = search_module._Search._recovered

    def one_second_per_step(self, candidate, head):
        trained, seconds, reused = original(self, candidate, head)
        return trained, 0.0 if reused else float(head[-1]["options"]["steps"]), reused

    monkeypatch.setattr(search_module._Search, "_recovered", one_second_per_step)
    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: 0.0))
    monkeypatch.setattr(search_module, "step_cost", lambda *a, **k: StepCost(step_s=step_s, pool_s=pool_s, validation_s=0.0))
    monkeypatch.setattr(search_module._Search, "score", lambda self, v: 100.0 / sum(
        st.options["steps"] for st in v.provenance.stages if st.method == "recover"))  # every round helps
    monkeypatch.setattr(search_schedule, "STEP_UNIT", 1)
    monkeypatch.setattr(search_module, "STEP_UNIT", 1)
    monkeypatch.setattr(search_schedule, "MIN_FIRST_STEPS", 1)


def test_without_min_steps_the_budget_sets_the_first_round(tmp_path, monkeypatch):
    _budget_set(monkeypatch, step_s=1.0)
    given = options(tmp_path, min_steps=None, max_akd=1e-3, budget="30s", max_steps=64)
    record, _ = search(calibrated_teacher(), given, None, [CANDIDATES[1], CANDIDATES[2]])
    # two heads at 1 s/step: the first round gets 0.15 of 30 s, 4.5 s: 2 steps each (rounds of 2 and 1 heads: 8 s predicted)
    assert record["schedule"] == {"first_steps": 2, "set_by": "budget", "rounds": [2, 1], "step_s": 1.0, "fixed_s": 0.0, "predicted_s": 8.0}
    # the faster of the near-tied pair goes on, 4, 8 more steps (16 s spent), and the 14 s left buy a last round of 14
    assert record["trained"] == ["prune-0.6@2", "prune-0.3@2", "prune-0.6@6", "prune-0.6@14", "prune-0.6@28"]
    assert record["log"][0]["candidate"] == "schedule" and "rounds of [2, 1] heads" in record["log"][0]["planned"]

    # a resumed search keeps the schedule it started with, though its probe now measures otherwise
    _budget_set(monkeypatch, step_s=3.0)
    again, _ = search(calibrated_teacher(), given, None, [CANDIDATES[1], CANDIDATES[2]])
    assert again["schedule"]["first_steps"] == 2
    assert again["trained"][:1] == ["prune-0.6@30"]  # every cached round reused; the budget they no longer cost trains on
    assert again["log"][0] == {"candidate": "schedule", "steps": 2, "reused": "the schedule this cache's earlier run chose"}


@pytest.mark.parametrize(
    "recover, step_s",
    [({}, 1.0), ({"refresh": 4}, 1.5), ({"refresh": 4, "augment": "flip"}, 1.0),
     ({"refresh": 4, "augment": "flip", "augment_per": "pool"}, 1.5)],
)  # fmt: skip
def test_the_plan_charges_a_refreshed_pools_labelling_to_its_steps_unless_each_step_labels_its_batch(
    tmp_path, monkeypatch, recover, step_s
):
    """Probe: 1 s a step, 2 s to label a pool. Refreshed every 4 steps, a pool labelled once adds
    0.5 s a step; a batch augmented in its step is labelled inside the measured step already."""
    _budget_set(monkeypatch, step_s=1.0, pool_s=2.0)
    given = options(tmp_path, min_steps=None, max_akd=1e-3, budget="30s", max_steps=8, recover={**RECOVER, **recover})
    record, _ = search(calibrated_teacher(), given, None, [CANDIDATES[1], CANDIDATES[2]])
    assert (record["schedule"]["step_s"], record["schedule"]["fixed_s"]) == (step_s, 2.0)


def test_min_steps_given_fixes_the_first_round(first):
    _, record, _ = first
    assert record["schedule"] == {"first_steps": 2, "set_by": "--min-steps", "rounds": [], "step_s": None, "fixed_s": None, "predicted_s": None}


@pytest.mark.parametrize(
    "runtime, precision, quantize_tried",
    [("torch", "fp32", True), ("torch", "int8", False), ("openvino", "int8", False), ("onnxruntime", "fp32", False)],
)
def test_torchs_int8_tails_are_tried_only_where_the_runtime_runs_them_as_they_are(runtime, precision, quantize_tried):
    given = SearchOptions(runtime=runtime, precision=precision)
    assert ("quantize" in given.candidate_methods) is quantize_tried
    names = [c.name for c in default_candidates(given.candidate_methods)]
    assert any(name.endswith("int8") for name in names) is quantize_tried
