"""Baselines and the check command: files, entry choice, exit codes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from compressbench.api import save
from compressbench.cli import app
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.regress import CheckSettings
from compressbench.regress.baseline import (
    FORMAT,
    baseline_entry,
    check_module,
    pick_entry,
    read_baseline,
)
from compressbench.regress.measure import RULER
from compressbench.regress.records import BaselineRecord, MachineBaseline

SETTINGS = CheckSettings(input_size=64, repeats=8, warmup=1, threads=1, bootstrap=200)
runner = CliRunner()


@pytest.fixture(scope="module")
def small_teacher():
    torch.manual_seed(0)
    return build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)).eval()


@pytest.fixture(scope="module")
def baseline(small_teacher):
    entry = baseline_entry("small", {}, small_teacher, SETTINGS, show_progress=False)
    return MachineBaseline(entries=(entry,), ruler=RULER, settings=SETTINGS.__dict__)


def as_file(baseline: MachineBaseline, machine: dict | None) -> dict:
    """A version-2 baseline file holding ``baseline`` recorded on ``machine``, as JSON."""
    return BaselineRecord((replace(baseline, machine=machine),)).to_json()


def test_entry_records_counts_and_raw_samples(baseline, small_teacher):
    entry = baseline["entries"][0]
    assert entry["params"] == sum(p.numel() for p in small_teacher.parameters())
    assert entry["macs"] > 0
    assert len(entry["samples"]["model_ms"]) == len(entry["samples"]["ruler_ms"]) == 8
    assert entry["samples"]["ratio"][0] == pytest.approx(entry["samples"]["model_ms"][0] / entry["samples"]["ruler_ms"][0])


def test_wider_model_fails_the_exact_gate(baseline):
    wider = build_teacher(DetectorConfig(block_expansion=12, max_features=64, num_blocks=3)).eval()
    chosen = pick_entry(baseline, wider, "wider", None)  # same architecture, other widths
    result = check_module(chosen, wider, SETTINGS, show_progress=False)
    assert result["exit_code"] == 1 and result["status"] == "regression"
    assert result["counts"]["status"] == "regression" and "params" in result["counts"]["reason"]


def test_other_architecture_is_a_usage_error(baseline):
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(CompressbenchError, match="no model of other's architecture"):
        pick_entry(baseline, other, "other", None)
    with pytest.raises(CompressbenchError, match="another model architecture"):
        pick_entry(baseline, other, "other", "small")
    with pytest.raises(CompressbenchError, match="no entry 'nope'"):
        pick_entry(baseline, other, "other", "nope")


def test_malformed_baselines(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(CompressbenchError, match="does not exist"):
        read_baseline(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CompressbenchError, match="not valid JSON"):
        read_baseline(broken)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"entries": []}))
    with pytest.raises(CompressbenchError, match="not a compressbench baseline"):
        read_baseline(foreign)
    old_ruler = tmp_path / "old-ruler.json"
    old_ruler.write_text(json.dumps({"format": FORMAT, "entries": []}))
    with pytest.raises(CompressbenchError, match=f"ruler of earlier versions, and this compressbench measures against {RULER}"):
        read_baseline(old_ruler)


def test_check_cli_exit_codes(tmp_path, monkeypatch, baseline, small_teacher):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.compressbench]\ninput_size = 64\nrepeats = 8\nwarmup = 1\nthreads = 1\nbootstrap = 200\n"
    )
    (tmp_path / "baseline.json").write_text(json.dumps({"format": FORMAT, **baseline.to_json()}))  # one baseline, untagged
    model_file = tmp_path / "small.pt"
    save(small_teacher, model_file)
    result = runner.invoke(app, ["check", "--baseline", "baseline.json", "--model", str(model_file), "--format", "json"])
    assert result.exit_code in (0, 3), result.output  # the same model: never a regression
    doc = json.loads(result.stdout)
    assert doc["results"][0]["counts"]["status"] == "pass"
    wider = build_teacher(DetectorConfig(block_expansion=12, max_features=64, num_blocks=3)).eval()
    save(wider, tmp_path / "wider.pt")
    result = runner.invoke(app, ["check", "--baseline", "baseline.json", "--model", "wider.pt", "--entry", "small"])
    assert result.exit_code == 1, result.output
    # recorded on another CPU: said first, in one line; the exact gate still decides
    from compressbench.profiling.machine import fingerprint_from_text

    epyc = fingerprint_from_text("model name\t: AMD EPYC 7B13\nflags\t: avx2\n", cores=2, threads=1)
    (tmp_path / "foreign.json").write_text(json.dumps(as_file(baseline, epyc.to_dict())))
    result = runner.invoke(app, ["check", "--baseline", "foreign.json", "--model", "wider.pt", "--entry", "small", "--format", "json"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("note: other CPU: baseline recorded on AMD EPYC 7B13 (AVX2), 2 cores, checked on ")
    assert json.loads(result.stdout)["latency_mode"] == "advisory"
    for args, fragment in [
        (["--baseline", "nope.json"], "does not exist"),
        (["--baseline", "baseline.json", "--max-slowdown", "lots"], "expected a fraction"),
        (["--baseline", "baseline.json", "--repeats", "0"], "--repeats must be a positive integer"),
        (["--baseline", "baseline.json", "--latency", "maybe"], "latency must be one of gate, strict, advisory, got 'maybe'"),
    ]:
        bad = runner.invoke(app, ["check", *args])
        assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and fragment in bad.stderr


def test_advisory_latency_leaves_the_exit_code_to_the_counts(baseline, small_teacher, monkeypatch):
    from compressbench.regress import baseline as baseline_module
    from compressbench.regress.measure import Samples

    # timings replaced by fixed samples (twice the baseline's ratio), so the verdict cannot depend on the machine
    entry = replace(baseline.entries[0], samples=Samples([1.0 + i / 100 for i in range(8)], [1.0] * 8))
    monkeypatch.setattr(baseline_module, "measure_relative", lambda *a, **k: Samples([2.0 + i / 100 for i in range(8)], [1.0] * 8))
    gated = check_module(entry, small_teacher, SETTINGS, show_progress=False)
    assert gated["latency"]["status_name"] == "regression" and gated["exit_code"] == 1
    advisory = check_module(entry, small_teacher, replace(SETTINGS, latency="advisory"), show_progress=False)
    assert advisory["latency"]["status_name"] == "regression" and advisory["exit_code"] == 0
    wider = build_teacher(DetectorConfig(block_expansion=12, max_features=64, num_blocks=3)).eval()
    assert check_module(entry, wider, replace(SETTINGS, latency="advisory"), show_progress=False)["exit_code"] == 1


def test_an_entry_without_a_recorded_runtime_is_checked_in_eager_fp32(baseline, small_teacher, monkeypatch):
    from compressbench.regress import baseline as baseline_module
    from compressbench.regress.baseline import entry_runtime

    recorded = baseline["entries"][0]
    assert entry_runtime(recorded) == ("torch", "fp32") and recorded["runtime"]["precision_used"] == "fp32"
    old = {k: v for k, v in recorded.items() if k != "runtime"}  # as written before runtimes were recorded
    assert entry_runtime(old) == ("torch", "fp32")
    asked = []
    real = baseline_module.timed_call
    monkeypatch.setattr(baseline_module, "timed_call", lambda m, s, *pair, **k: asked.append(pair) or real(m, s, *pair, **k))
    result = check_module(old, small_teacher, replace(SETTINGS, latency="advisory"), show_progress=False)
    assert asked == [("torch", "fp32")] and result["runtime"]["runtime"] == "torch"
