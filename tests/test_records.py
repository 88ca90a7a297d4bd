"""Typed records: rows built in one place, files checked section by section when read back."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from compressbench.errors import CompressbenchError
from compressbench.records import (
    COMPARISON_FORMAT,
    PROFILE_FORMAT,
    RESULTS_FORMAT,
    ROW_KEYS,
    SEARCH_FORMAT,
    BudgetSplit,
    ComparisonRecord,
    ComparisonRow,
    LatencySummary,
    ProfileRecord,
    ResultsRecord,
    SearchRecord,
    check_comparison,
    read_comparison,
    read_profile,
    read_report_input,
    read_results,
    read_search,
)
from compressbench.regress.baseline import read_baseline_file
from compressbench.regress.measure import Samples
from compressbench.regress.records import BaselineEntry, BaselineRecord, MachineBaseline

ROW = ComparisonRow("teacher", "none", 10, 20, False, 0.5, 0.1, LatencySummary(1.0, 0.9, 1.1, 0.1, 30), 1.0, 0.0, 0.0)
RESULTS = {
    "format": "compressbench-results/1", "suite": "s.toml", "measure": {}, "stages": {}, "profiles": {}, "overlays": {},
    "env": {}, "comparison": {"rows": [ROW.to_json()], "modules": [], "env": {}},
}  # fmt: skip


def test_a_row_serialises_in_the_documented_key_order_with_notes_joined():
    row = ComparisonRow("v", "prune", 1, None, False, 0.1, None, notes=["a", "b"])
    assert tuple(row.to_json()) == ROW_KEYS and row.to_json()["note"] == "a; b"
    assert ROW.to_json()["note"] is None


def write(tmp_path, doc) -> str:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_results_that_match_their_schema_are_read(tmp_path):
    assert read_results(write(tmp_path, RESULTS))["suite"] == "s.toml"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "compressbench-variant/2"}, r"not a compressbench results file \(format 'compressbench-variant/2', expected"),
        ({"profiles": None}, "'profiles' must be a table, got null"),
        ({"comparison": {"rows": [], "modules": [], "env": {}}}, "'rows' is empty"),
        ({"comparison": {"rows": [{**ROW.to_json(), "akd_px": "0.5"}], "modules": [], "env": {}}}, r"row 1: 'akd_px' must be an integer or a number or null"),
        ({"comparison": {"rows": [ROW.to_json()], "env": {}}}, "misses its 'modules' section"),
    ],
)
def test_results_that_parse_but_are_not_results_are_one_clear_error(tmp_path, change, message):
    with pytest.raises(CompressbenchError, match=message):
        read_results(write(tmp_path, {**RESULTS, **change}))


def test_a_comparison_row_count_is_not_a_bool():
    with pytest.raises(CompressbenchError, match="'macs_int8' must be true/false"):
        check_comparison({"rows": [{**ROW.to_json(), "macs_int8": 1}], "modules": [], "env": {}}, "record")


def test_a_report_that_fails_part_way_leaves_nothing(tmp_path, monkeypatch):
    from compressbench.report import markdown_report

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(markdown_report, "environment_section", broken)  # after the Pareto PNG is written
    with pytest.raises(RuntimeError, match="plotting failed"):
        markdown_report.write_report(RESULTS, tmp_path / "REPORT.md")
    assert list(tmp_path.iterdir()) == []


PROFILE = ProfileRecord(
    model="teacher", params=14_215_368, macs_fvcore=1_000, macs_thop=990, macs_notes=["ops outside leaf modules"],
    size_mb=56.9, latency_ms=LatencySummary(median=24.8, p10=22.9, p90=28.1, iqr=2.5, runs=50), batch=1,
    input_size=256, input_shape=[1, 3, 256, 256], threads=2, warmup=10, seed=0,
    modules=[{"name": "hourglass", "latency_ms": 16.9, "p10": 15.9, "p90": 19.3, "share": 0.68}],
    blocks=[{"name": "downblock_1", "input_shape": [3, 64, 64], "output_shape": [64, 32, 32], "params": 1920}],
    layers=[{"block": "downblock_1", "op": "conv", "module": "predictor.encoder.down_blocks.0.conv", "latency_ms": 1.5}],
    tree=[], attribution={"end_to_end_ms": 24.8}, hourglass_layout=True, efficiency={"peaks": None}, health={"healthy": True},
    runtime={"runtime": "torch"}, env={"torch": "2.13.0"},
)  # fmt: skip


def test_a_profile_round_trips_and_files_keep_their_keys():
    written = json.loads(json.dumps(PROFILE.to_json()))
    assert list(written) == ["format", *ProfileRecord.__dataclass_fields__] and written["format"] == PROFILE_FORMAT
    assert written["latency_ms"] == {"median": 24.8, "p10": 22.9, "p90": 28.1, "iqr": 2.5, "runs": 50}
    assert ProfileRecord.from_json(written) == PROFILE


def test_a_profile_written_before_the_format_tag_is_read():
    untagged = {key: value for key, value in PROFILE.to_json().items() if key != "format"}
    assert ProfileRecord.from_json(untagged) == PROFILE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "compressbench-results/1"}, r"^p is not a compressbench profile \(format 'compressbench-results/1', expected 'compressbench-profile/1'\)$"),
        ({"blocks": None}, r"^p: 'blocks' must be a list, got null$"),
        ({"params": "14M"}, r"^p: 'params' must be an integer, got \"14M\"$"),
        ({"hourglass_layout": 1}, r"^p: 'hourglass_layout' must be true/false, got 1$"),
        ({"macs_fvcore": 1.5}, r"^p: 'macs_fvcore' must be an integer or null, got 1.5$"),
        ({"latency_ms": {"median": 1.0, "p10": 1.0, "p90": 1.0, "runs": 3}}, r"^p: latency_ms misses its 'iqr' section$"),
        ({"latency_ms": {"median": 1.0, "p10": 1.0, "p90": 1.0, "iqr": 0.0, "runs": 3.0}}, r"^p: latency_ms: 'runs' must be an integer, got 3.0$"),
        ({"layers": [{"block": "b"}, "conv"]}, r"^p: 'layers' entry 2 must be a table, got \"conv\"$"),
        ({"input_shape": [1, 3, "256", 256]}, r"^p: 'input_shape' entry 3 must be an integer, got \"256\"$"),
    ],
)
def test_a_profile_that_is_not_one_is_one_clear_error(change, message):
    with pytest.raises(CompressbenchError, match=message):
        ProfileRecord.from_json({**PROFILE.to_json(), **change}, "p")


def test_a_profile_missing_a_section_names_it():
    doc = PROFILE.to_json()
    del doc["env"]
    with pytest.raises(CompressbenchError, match=r"^p misses its 'env' section$"):
        ProfileRecord.from_json(doc, "p")
    with pytest.raises(CompressbenchError, match=r"^p must be a table, got list$"):
        ProfileRecord.from_json([doc], "p")


def test_a_profile_file_is_read_and_checked(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE.to_json()))
    assert read_profile(path) == PROFILE
    path.write_text(json.dumps({**PROFILE.to_json(), "threads": None}))
    with pytest.raises(CompressbenchError, match=rf"^profile file {re.escape(str(path))}: 'threads' must be an integer, got null$"):
        read_profile(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist; give the JSON written by 'compressbench profile'"),
        ("{not json", r"is not valid JSON \(.*\); give the JSON written by 'compressbench profile'"),
        (json.dumps(RESULTS), "is a results file written by 'compressbench bench', not a compressbench profile file; give"),
        (json.dumps({"rows": [], "chain": []}), "is a comparison written by 'compressbench compress', not a compressbench profile file"),
        (json.dumps({"format": "compressbench-profile/2"}), r"is not a compressbench profile file \(format 'compressbench-profile/2', expected"),
        (json.dumps([1, 2]), r"is not a compressbench profile file \(format None, expected"),
    ],
)
def test_a_file_that_is_not_a_profile_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "profile.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(CompressbenchError, match=message) as caught:
        read_profile(path)
    assert "\n" not in str(caught.value)


def test_a_profile_given_for_results_says_what_it_is(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(PROFILE.to_json()))
    with pytest.raises(CompressbenchError, match="is a profile written by 'compressbench profile', not a compressbench results file"):
        read_results(path)


# --- typed, versioned records: comparison, results, search, baseline (issue 28 part 2) ---------------


ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "benchmarks" / "results" / "amd-epyc-avx512"
VARIANT = ComparisonRow(
    "prune-0.5", "prune", 7_000_000, 600_000_000, False, 28.1, 9.5, LatencySummary(5.25, 5.0, 5.75, 0.25, 30), 1.9, 0.42,
    0.011, "fp32", 1.9, ("pruned 50% of the channels",), recover_steps=300, recovered_by="prune-0.5@300", val_akd_px=0.4,
    akd_px_ci95=0.05,
)  # fmt: skip
COMPARISON = ComparisonRecord(
    rows=(ROW, dataclasses.replace(VARIANT, recover_steps=None, recovered_by=None, val_akd_px=None)),
    modules=({"module": "hourglass", "teacher_ms": 0.7, "teacher_share": 0.7},), env={"runtime": "torch", "batch": 1},
    runs={"teacher": {"runtime": "torch"}}, notes=("prune-0.5: pruned 50% of the channels",), health={"healthy": True, "warnings": []},
    model="teacher", chain=("prune",), stages=({"method": "prune", "options": {"ratio": 0.5}, "report": {}},), prior_stages=(),
    data="synthetic", seed=0, out="small.pt",
)  # fmt: skip
RESULTS_RECORD = ResultsRecord(
    suite="benchmarks/suite.toml", measure={"runtime": "torch"}, comparison=COMPARISON, specs=({"name": "teacher"},),
    skipped={"openvino": "not installed"}, stages={"teacher": []}, profiles={"teacher": {"params": 10}},
    overlays={"points": {}}, env={"runtime": "torch"}, cached=("teacher",),
)  # fmt: skip
SEARCH = SearchRecord(
    max_akd=1.0, runtime="openvino", precision="int8", budget_s=300.0, spent_s=262.5, interrupted=False, seed=0,
    data="synthetic", trained=("prune-0.5@300",), log=({"candidate": "prune-0.5", "steps": 300},), front=("prune-0.5",),
    front_chains={"prune-0.5": {"stages": [{"method": "prune", "options": {"ratio": 0.5}}]}}, winner="prune-0.5",
    comparison=ComparisonRecord(rows=(ROW, VARIANT), modules=(), env={"runtime": "openvino"}, notes=(), health=None),
    budget_split=BudgetSplit(screening_s=12.5, training_s=250.0, timing_s=31.25, precision_s=4.5),
    runtime_fronts={"onnxruntime int8": {"front": ["prune-0.5"], "winner": "prune-0.5", "rows": []}}, out="best.pt",
)  # fmt: skip
ENTRY = BaselineEntry("teacher", "f00d", 14_215_368, Samples([24.0, 25.0], [12.0, 12.5]), spec={"name": "teacher"}, macs=10,
                      runtime={"runtime": "torch", "precision_requested": "fp32"})  # fmt: skip
BASELINE = BaselineRecord((MachineBaseline((ENTRY,), ruler="hourglass-v2", suite="s.toml", settings={"threads": 2},
                                           machine={"cpu_model": "AMD EPYC", "cores": 2, "key": "k"}, env={}, health={}),))  # fmt: skip


def as_file(record) -> dict:
    return json.loads(json.dumps(record.to_json()))


def test_a_latency_summary_converts_between_the_spellings_files_use():
    summary = LatencySummary.from_samples([4.0, 1.0, 3.0, 2.0, 5.0])
    assert summary == LatencySummary(median=3.0, p10=1.4, p90=4.6, iqr=2.0, runs=5)
    assert summary.to_json() == {"median": 3.0, "p10": 1.4, "p90": 4.6, "iqr": 2.0, "runs": 5}
    assert summary.to_json("row") == {"latency_ms": 3.0, "latency_p10": 1.4, "latency_p90": 4.6, "latency_iqr": 2.0, "latency_runs": 5}
    assert summary.to_json("manifest") == {"median_ms": 3.0, "p10_ms": 1.4, "p90_ms": 4.6, "iqr_ms": 2.0, "runs": 5}
    for spelling in ("profile", "row", "manifest"):
        assert LatencySummary.from_json(summary.to_json(spelling), spelling) == summary
    assert LatencySummary.from_json({"latency_ms": None}, "row") is None


def test_a_comparison_round_trips_with_exact_values():
    written = as_file(COMPARISON)
    assert written["format"] == COMPARISON_FORMAT == "compressbench-comparison/2"
    assert list(written) == ["format", "model", "chain", "stages", "prior_stages", "data", "seed", "rows", "modules", "runs",
                             "env", "notes", "health", "out"]  # fmt: skip
    assert written["rows"][1] == {
        "variant": "prune-0.5", "method": "prune", "params": 7_000_000, "macs": 600_000_000, "macs_int8": False, "size_mb": 28.1,
        "peak_mem_mb": 9.5, "latency_ms": 5.25, "latency_p10": 5.0, "latency_p90": 5.75, "latency_iqr": 0.25, "latency_runs": 30,
        "speedup": 1.9, "akd_px": 0.42, "akd_px_ci95": 0.05, "jacobian_error": 0.011, "precision": "fp32",
        "speedup_vs_eager_fp32": 1.9, "note": "pruned 50% of the channels",
    }  # fmt: skip
    assert ComparisonRecord.from_json(written) == COMPARISON
    assert dict(COMPARISON) == COMPARISON.to_json() and COMPARISON["rows"][1]["akd_px"] == 0.42  # reads like its JSON


def test_results_and_search_records_round_trip_with_exact_values():
    results = as_file(RESULTS_RECORD)
    assert results["format"] == RESULTS_FORMAT == "compressbench-results/2" and results["comparison"] == as_file(COMPARISON)
    assert results["cached"] == ["teacher"] and ResultsRecord.from_json(results) == RESULTS_RECORD
    search = as_file(SEARCH)
    assert search["format"] == SEARCH_FORMAT == "compressbench-search/1"
    assert search["budget_split"] == {"screening_s": 12.5, "training_s": 250.0, "precision_s": 4.5, "timing_s": 31.25}
    assert search["rows"][1]["recover_steps"] == 300 and search["rows"][1]["recovered_by"] == "prune-0.5@300"
    assert "recover_steps" not in search["rows"][0] and search["out"] == "best.pt" and search["winner"] == "prune-0.5"
    assert SearchRecord.from_json(search) == SEARCH
    assert SearchRecord.from_json({k: v for k, v in search.items() if k not in ("budget_split", "runtime_fronts")}).budget_split == BudgetSplit()


def test_a_baseline_round_trips_with_exact_values():
    written = as_file(BASELINE)
    assert written == {"format": "compressbench-baseline/2", "baselines": [{
        "ruler": "hourglass-v2", "suite": "s.toml", "settings": {"threads": 2}, "machine": {"cpu_model": "AMD EPYC", "cores": 2, "key": "k"},
        "env": {}, "entries": [{"name": "teacher", "spec": {"name": "teacher"}, "fingerprint": "f00d", "params": 14_215_368, "macs": 10,
                                "runtime": {"runtime": "torch", "precision_requested": "fp32"},
                                "samples": {"model_ms": [24.0, 25.0], "ruler_ms": [12.0, 12.5], "ratio": [2.0, 2.0]}}],
        "health": {},
    }]}  # fmt: skip
    assert BaselineRecord.from_json(written) == BASELINE
    assert ENTRY.latency == LatencySummary(24.5, 24.1, 24.9, 0.5, 2)


def test_the_committed_files_of_earlier_versions_still_load():
    baseline_file = ROOT / "benchmarks" / "baseline.json"
    on_disk = json.loads(baseline_file.read_text())
    baseline = read_baseline_file(baseline_file)
    assert baseline.to_json() == on_disk and not baseline.legacy  # version 2, written back unchanged
    results = read_results(ROOT / "benchmarks" / "results" / "results.json")  # compressbench-results/1
    assert results.comparison.rows[0].latency.iqr is None and results.comparison.rows[0].latency.median > 0
    assert results.to_json()["format"] == RESULTS_FORMAT and results["profiles"] == json.loads(
        (ROOT / "benchmarks" / "results" / "results.json").read_text())["profiles"]
    compress = read_comparison(COMMITTED / "recover-default-3000.json")  # compressbench-comparison/1 of a compress run
    assert compress.chain == ("prune", "recover", "exact", "quantize") and compress.stages[1]["method"] == "recover"
    search = read_search(COMMITTED / "search-openvino-int8.json")  # a search written as a comparison with a front
    assert search.winner == "prune-0.5+exact" and search.budget_split == BudgetSplit() and search.out
    assert search.comparison.row(search.winner).recover_steps > 0
    for path in (COMMITTED / "search-openvino-int8.json", COMMITTED / "recover-default-3000.json", COMMITTED / "compress.json"):
        assert read_report_input(path).comparison.rows


def test_a_search_record_is_recognised_by_its_tag(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps(as_file(SEARCH)))
    assert read_search(path) == SEARCH
    rendered = read_report_input(path)  # what 'compressbench report' draws from it
    assert rendered.suite == f"{path} (search record)" and rendered.comparison == SEARCH.comparison
    with pytest.raises(CompressbenchError, match="is a search record written by 'compressbench search --results', not a compressbench profile"):
        read_profile(path)


@pytest.mark.parametrize(
    ("reader", "doc", "message"),
    [
        (read_search, {"format": "compressbench-comparison/2", "rows": [], "chain": []}, "is a comparison written by 'compressbench compress', not a compressbench search record"),
        (read_comparison, {"format": "compressbench-search/1"}, "is a search record written by 'compressbench search --results', not a compressbench comparison file"),
        (read_comparison, {"format": "compressbench-comparison/3"}, r"is not a compressbench comparison file \(format 'compressbench-comparison/3', expected 'compressbench-comparison/2'\)"),
        (read_results, {**RESULTS, "format": "compressbench-results/9"}, r"is not a compressbench results file \(format 'compressbench-results/9'"),
        (read_search, {**as_file(SEARCH), "interrupted": "no"}, "'interrupted' must be true/false"),
        (read_search, {**as_file(SEARCH), "budget_split": {"timing_s": "long"}}, "budget_split: 'timing_s' must be an integer or a number"),
        (read_comparison, {**as_file(COMPARISON), "rows": [{**VARIANT.to_json(), "latency_p10": None}]}, "row 1: 'latency_p10' must be"),
    ],
)  # fmt: skip
def test_a_record_file_of_the_wrong_kind_or_shape_is_one_clear_line(tmp_path, reader, doc, message):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CompressbenchError, match=message) as caught:
        reader(path)
    assert "\n" not in str(caught.value)


def test_a_baseline_file_of_another_format_is_one_clear_line(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({**as_file(BASELINE), "format": "compressbench-results/2"}))
    with pytest.raises(CompressbenchError, match=r"^\S+ is not a compressbench baseline \(format 'compressbench-baseline/2'\)$"):
        read_baseline_file(path)


@pytest.mark.parametrize("record", [ROW, COMPARISON, RESULTS_RECORD, SEARCH, BudgetSplit(), ENTRY, BASELINE, PROFILE, ROW.latency])
def test_records_are_frozen(record):
    name = dataclasses.fields(record)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, name, None)
    if hasattr(record, "keys"):
        with pytest.raises(TypeError):
            record[name] = None  # a record reads like its JSON, and has no item assignment
        before, key = record.to_json(), next(iter(record))
        value = record[key]
        if isinstance(value, (dict, list)):
            value.clear()
        assert record.to_json() == before  # what it reads is a copy: the record is unchanged


def test_hints_return_a_new_record_and_leave_the_measured_one_as_it_was():
    from compressbench.comparison.hints import annotate

    measured = dataclasses.replace(COMPARISON, rows=(ROW, dataclasses.replace(COMPARISON.rows[1], akd_px=3.0, notes=())), notes=())
    hinted = annotate(measured, 1.0)
    assert measured.rows[1].notes == () and measured.notes == ()
    assert hinted.rows[1].note.startswith("AKD 3 px > 1 px: fine-tune it back with `compressbench compress --method prune,recover")
    assert hinted.notes == (f"prune-0.5: {hinted.rows[1].note}",)
