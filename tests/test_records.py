"""Typed records: rows built in one place, files checked section by section when read back."""

from __future__ import annotations

import json
import re

import pytest

from compressbench.errors import CompressbenchError
from compressbench.records import (
    PROFILE_FORMAT,
    ROW_KEYS,
    ComparisonRow,
    LatencySummary,
    ProfileRecord,
    check_comparison,
    read_profile,
    read_results,
)

ROW = ComparisonRow("teacher", "none", 10, 20, False, 0.5, 0.1, 1.0, 0.9, 1.1, 1.0, 0.0, 0.0)
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
