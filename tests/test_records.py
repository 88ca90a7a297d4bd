"""Typed records: rows built in one place, files checked section by section when read back."""

from __future__ import annotations

import json

import pytest

from compressbench.errors import CompressbenchError
from compressbench.records import ROW_KEYS, ComparisonRow, check_comparison, read_results

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
