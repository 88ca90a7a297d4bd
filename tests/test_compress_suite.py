"""The compression benchmark as suite files: benchmarks/compress.toml and its quick twin, run by bench."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.compression.quantize.backends import BACKENDS
from compressbench.errors import CompressbenchError
from compressbench.suite import read_suite

FULL, QUICK = "benchmarks/compress.toml", "benchmarks/compress-quick.toml"
VARIANTS = [
    "teacher", "exact", "prune-0.3", "prune-0.5", "prune-0.7",
    "quantize-fx", "quantize-onnxruntime", "quantize-pt2e", "quantize-weights-only",
    "asym-r0.1", "asym-r0.25", "asym-r0.5", "dsconv-m1", "dsconv-m2", "dsconv-m4",
    "exact+quantize", "prune-0.5+quantize", "exact+prune-0.5+quantize",
]  # fmt: skip


def pt2e_missing() -> str | None:
    try:
        BACKENDS.get("pt2e").check_available()
    except CompressbenchError as exc:
        return str(exc)
    return None


def listed(path: str) -> list[str]:
    suite = read_suite(path)
    return [v.name for v in suite.variants] + list(suite.skipped)


def test_the_benchmark_lists_every_method_and_chain():
    suite = read_suite(FULL)
    assert sorted(listed(FULL)) == sorted(VARIANTS)
    assert suite.variants[0].name == "teacher"  # the reference
    assert suite.measure["batch"] == 1 and suite.measure["threads"] == 2 and suite.measure["input_size"] == 256
    assert {v.name: v.options for v in suite.variants}["asym-r0.25"] == {"rank_ratio": 0.25, "init": "svd"}
    assert {v.name: v.method for v in suite.variants}["exact+prune-0.5+quantize"] == "exact,prune,quantize"
    why = pt2e_missing()
    assert suite.skipped == ({"quantize-pt2e": why} if why else {})


def test_quick_suite_is_the_same_variants_on_a_reduced_teacher():
    full, quick = read_suite(FULL), read_suite(QUICK)
    assert listed(QUICK) == listed(FULL)
    for a, b in zip(full.variants, quick.variants):
        assert {**asdict(a), "model": None, "config": None} == {**asdict(b), "model": None, "config": None}
        assert b.config == "benchmarks/configs/teacher-reduced.yaml"
    assert quick.measure["input_size"] == 64


@pytest.mark.slow  # every variant of the benchmark, built and measured on the reduced teacher (~30 s)
def test_quick_benchmark_runs_through_bench_and_report(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path / "cache"))
    results, report = tmp_path / "compress-quick.json", tmp_path / "compress-quick.md"
    runner = CliRunner()
    done = runner.invoke(app, ["bench", QUICK, "--output", str(results), "--no-profiles", "--format", "md"])
    assert done.exit_code == 0, done.output
    doc = json.loads(results.read_text())
    rows = {r["variant"]: r for r in doc["comparison"]["rows"]}
    why = pt2e_missing()
    assert list(rows) == [v for v in VARIANTS if not (why and v == "quantize-pt2e")]
    if why:
        assert doc["skipped"] == {"quantize-pt2e": why}
        assert f"skipped quantize-pt2e: {why}" in doc["comparison"]["notes"]
    assert rows["teacher"]["speedup"] == 1.0 and rows["exact"]["akd_px"] < 1e-3  # exact changes no output
    assert rows["prune-0.7"]["params"] < rows["prune-0.5"]["params"] < rows["prune-0.3"]["params"] < rows["teacher"]["params"]
    assert rows["exact+prune-0.5+quantize"]["macs_int8"] and not rows["quantize-weights-only"]["macs_int8"]
    assert rows["quantize-fx"]["size_mb"] < rows["teacher"]["size_mb"] / 2  # int8 weights
    # bench ends with the comparison table, in the format asked for
    assert "### Comparison" in done.stdout and "| exact+prune-0.5+quantize |" in done.stdout

    done = runner.invoke(app, ["report", str(results), "-o", str(report)])
    assert done.exit_code == 0, done.output
    text = report.read_text()
    assert "## All variants" in text
    for column in ("speedup", "akd_px", "jac_err", "params", "size_mb"):  # what compress.md held
        assert column in text
    assert all(f"| {name} " in text for name in rows)
