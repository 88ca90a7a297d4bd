"""``compressbench baseline``: refuses an unhealthy machine unless forced; ``--add`` keeps other machines'
(and this machine's other runtimes); ``--runtime``/``--precision`` on baseline and check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import compressbench.api as api_module
from compressbench.cli import app
from compressbench.profiling.health import Health
from compressbench.profiling.machine import fingerprint_from_text
from compressbench.regress import baseline
from compressbench.regress.baseline import FORMAT
from compressbench.regress.measure import RULER

runner = CliRunner()
SUITE = Path(__file__).parents[2] / "benchmarks" / "suite.toml"
INTEL = fingerprint_from_text("model name\t: Intel Xeon\nflags\t: avx512f amx_int8\n", cores=2)
AMD = fingerprint_from_text("model name\t: AMD EPYC\nflags\t: avx2\n", cores=2)


@pytest.fixture
def fake(monkeypatch):
    """No measuring: the baseline recorded is one entry on the machine in ``state['machine']``."""
    state = {"machine": INTEL, "health": Health()}

    def create(suite, settings, show_progress=True, runtime="torch", precision="fp32", health=None):
        state["measured_on"] = (runtime, precision)
        entry = {"name": "teacher", "fingerprint": "f", "params": 1, "macs": 1, "samples": {"model_ms": [1.0], "ruler_ms": [1.0]},
                 "runtime": {"runtime": runtime, "precision_requested": precision}}  # fmt: skip
        one = {"ruler": RULER, "settings": settings.__dict__, "machine": state["machine"].to_dict(), "env": {}, "entries": [entry],
               "health": health.to_dict()}  # fmt: skip
        return {"format": FORMAT, "baselines": [one]}

    monkeypatch.setattr(baseline, "create_baseline", create)
    monkeypatch.setattr(baseline, "check_health", lambda threads=None: state["health"])
    monkeypatch.setattr(api_module, "check_health", lambda threads=None: state["health"])
    return state


def record(out: Path, *extra: str):
    return runner.invoke(app, ["baseline", "--suite", str(SUITE), "--only", "teacher", "--output", str(out), *extra])


def test_refuses_an_unhealthy_machine_unless_forced(fake, tmp_path):
    fake["health"] = Health(("oversubscribed: load average 1.3 on 2 cores leaves 0.7 free for 2 threads",))
    out = tmp_path / "b.json"
    result = record(out)
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr == ("error: not recording a baseline: measurement health: oversubscribed: load average 1.3 on 2 cores "
                             "leaves 0.7 free for 2 threads; wait for a quiet machine or pass --force\n")
    forced = record(out, "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stderr.startswith("note: measurement health: oversubscribed")
    assert json.loads(out.read_text())["baselines"][0]["health"]["healthy"] is False


def test_add_keeps_other_machines_and_replaces_this_one(fake, tmp_path):
    out = tmp_path / "b.json"
    assert record(out).exit_code == 0
    fake["machine"] = AMD
    added = record(out, "--add")
    assert added.exit_code == 0, added.output
    doc = json.loads(out.read_text())
    assert [b["machine"]["key"] for b in doc["baselines"]] == [INTEL.key, AMD.key]
    again = record(out, "--add")
    assert "replaced the baseline of AMD EPYC (AVX2), 2 cores" in again.stderr
    assert len(json.loads(out.read_text())["baselines"]) == 2
    assert record(out).exit_code == 0  # without --add the file holds this machine alone
    assert len(json.loads(out.read_text())["baselines"]) == 1


def test_add_to_a_broken_file_fails_before_measuring(fake, tmp_path):
    out = tmp_path / "b.json"
    out.write_text("{broken")
    result = record(out, "--add")
    assert result.exit_code == 2 and "is not valid JSON" in result.stderr


def test_check_rebuilds_every_entry_from_its_spec_with_the_recorded_build_settings(tmp_path, monkeypatch):
    """``check`` without --model rebuilds each entry from its suite spec (what CI runs): the build
    settings come from the baseline (format 2) or the suite defaults (older files)."""
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "suite.toml"
    config = Path(__file__).parents[2] / "benchmarks" / "configs" / "teacher-reduced.yaml"
    suite.write_text(
        f'[measure]\ninput_size = 64\ncalib = 2\nframes = 2\n\n[[variant]]\nname = "small"\nconfig = "{config}"\n\n'
        f'[[variant]]\nname = "small-prune"\nconfig = "{config}"\nmethod = "prune"\n\n'
        f'[[variant]]\nname = "small-int8"\nconfig = "{config}"\nmethod = "quantize"\n'
    )
    out = tmp_path / "baseline.json"
    recorded = runner.invoke(app, ["baseline", str(suite), "-o", str(out), "--repeats", "3", "--force", "--format", "json"])
    assert recorded.exit_code == 0, recorded.output
    baseline = json.loads(out.read_text())["baselines"][0]
    assert baseline["measure"]["calib"] == 2 and baseline["measure"]["input_size"] == 64
    assert api_module.build_measure(baseline, type("S", (), {"input_size": 64, "seed": 0}))["calib"] == 2
    checked = runner.invoke(app, ["check", "--baseline", str(out), "--repeats", "3", "--latency", "advisory", "--format", "json"])
    assert checked.exit_code == 0, checked.output
    results = json.loads(checked.stdout)["results"]
    assert [r["name"] for r in results] == ["small", "small-prune", "small-int8"]
    assert all(r["counts"]["status"] == "pass" for r in results)
    # int8 MACs are counted (on the float model it was quantized from) and gated like any other
    entries = {e["name"]: e for e in baseline["entries"]}
    assert entries["small-int8"]["macs"] == entries["small"]["macs"] == results[2]["counts"]["macs"] > 0
    assert results[2]["counts"]["reason"] == "params and macs identical"
    # entries that cannot be rebuilt (no spec): nothing to check is a usage error, not a pass
    empty = tmp_path / "empty.json"
    doc = json.loads(out.read_text())
    for entry in doc["baselines"][0]["entries"]:
        del entry["spec"]
    empty.write_text(json.dumps(doc))
    nothing = runner.invoke(app, ["check", "--baseline", str(empty), "--latency", "advisory"])
    assert nothing.exit_code == 2 and nothing.stderr.startswith("error: nothing to check: no entry of ")
    assert len(nothing.stderr.strip().splitlines()) == 1


def test_runtime_defaults_to_the_suite_and_the_options_override_it(fake, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text('[measure]\nruntime = "onnxruntime"\nprecision = "int8"\n\n[[variant]]\nname = "teacher"\n')
    out = tmp_path / "b.json"
    assert runner.invoke(app, ["baseline", str(suite), "-o", str(out)]).exit_code == 0
    assert fake["measured_on"] == ("onnxruntime", "int8")
    assert runner.invoke(app, ["baseline", str(suite), "-o", str(out), "--runtime", "torch", "--precision", "fp32"]).exit_code == 0
    assert fake["measured_on"] == ("torch", "fp32")


@pytest.mark.parametrize("command", ["baseline", "check"])
def test_an_unknown_runtime_or_precision_is_refused_with_the_known_ones(fake, tmp_path, command):
    args = ["baseline", "--suite", str(SUITE), "-o", str(tmp_path / "b.json")] if command == "baseline" else ["check", "--baseline", str(tmp_path / "b.json")]
    if command == "check":
        assert record(tmp_path / "b.json").exit_code == 0
    unknown = runner.invoke(app, [*args, "--runtime", "tflite"])
    assert unknown.exit_code == 2
    assert unknown.stderr == "error: unknown runtime 'tflite'; known: executorch, onnxruntime, openvino, torch\n"
    bad = runner.invoke(app, [*args, "--runtime", "torch", "--precision", "fp8"])
    assert bad.exit_code == 2 and bad.stderr == "error: unknown precision 'fp8'; known: fp32, bf16, int8\n"
    assert "measured_on" not in fake or command == "check"  # refused before any measuring


@pytest.fixture
def openvino_missing(monkeypatch):
    from compressbench.runtimes import RuntimeMissing, get_runtime

    def missing():
        raise RuntimeMissing("openvino is not installed; run `make install` (pip install openvino)")

    monkeypatch.setattr(get_runtime("openvino"), "version", missing)


def test_a_runtime_not_installed_is_one_line_and_exit_2(fake, tmp_path, openvino_missing):
    out = tmp_path / "b.json"
    result = record(out, "--runtime", "openvino")
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr == "error: openvino is not installed; run `make install` (pip install openvino)\n"


def test_check_refuses_an_entry_measured_on_a_runtime_not_installed_before_building(fake, tmp_path, monkeypatch, openvino_missing):
    out = tmp_path / "b.json"
    entry = {"name": "teacher", "spec": {"name": "teacher"}, "fingerprint": "f", "params": 1, "macs": 1,
             "samples": {"model_ms": [1.0], "ruler_ms": [1.0]}, "runtime": {"runtime": "openvino", "precision_requested": "int8"}}  # fmt: skip
    out.write_text(json.dumps({"format": FORMAT, "baselines": [{"ruler": RULER, "machine": INTEL.to_dict(), "entries": [entry]}]}))
    monkeypatch.setattr(api_module, "build_variant", lambda *a, **k: pytest.fail("built a variant before refusing"))
    result = runner.invoke(app, ["check", "--baseline", str(out)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "error: openvino is not installed; run `make install` (pip install openvino)"


def test_add_keeps_one_baseline_per_runtime_of_a_machine_and_check_picks_by_runtime(fake, tmp_path):
    out = tmp_path / "b.json"
    assert record(out).exit_code == 0
    assert record(out, "--add", "--runtime", "onnxruntime", "--precision", "int8").exit_code == 0
    again = record(out, "--add", "--runtime", "onnxruntime", "--precision", "int8")
    assert "replaced the baseline of" in again.stderr
    doc = json.loads(out.read_text())
    assert [b["entries"][0]["runtime"]["runtime"] for b in doc["baselines"]] == ["torch", "onnxruntime"]
    from compressbench.regress.baseline import read_baseline

    chosen = read_baseline(out, INTEL, 2, runtime=("onnxruntime", "int8"))
    assert chosen["entries"][0]["runtime"]["precision_requested"] == "int8"
    assert read_baseline(out, INTEL, 2)["entries"][0]["runtime"]["runtime"] == "torch"  # without a runtime: the first
    missing = runner.invoke(app, ["check", "--baseline", str(out), "--runtime", "openvino", "--precision", "bf16"])
    assert missing.exit_code == 2
    assert missing.stderr == (f"error: {out} holds no baseline measured on openvino bf16 (it holds: torch fp32, onnxruntime int8); "
                              "record one with 'compressbench baseline --runtime openvino --precision bf16 --add'\n")  # fmt: skip


def test_check_measures_each_entry_on_the_runtime_its_baseline_recorded(tmp_path, monkeypatch):
    """Recorded on ONNX Runtime int8 (a reduced teacher, 3 rounds), checked without --runtime: the
    check measures on ONNX Runtime int8 too, and both records say so."""
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "suite.toml"
    config = Path(__file__).parents[2] / "benchmarks" / "configs" / "teacher-reduced.yaml"
    suite.write_text(f'[measure]\ninput_size = 64\ncalib = 2\nframes = 2\n\n[[variant]]\nname = "small"\nconfig = "{config}"\n')
    out = tmp_path / "baseline.json"
    args = ["-o", str(out), "--repeats", "3", "--force", "--format", "json", "--runtime", "onnxruntime", "--precision", "int8"]
    recorded = runner.invoke(app, ["baseline", str(suite), *args])
    assert recorded.exit_code == 0, recorded.output
    baseline = json.loads(out.read_text())["baselines"][0]
    entry = baseline["entries"][0]["runtime"]
    assert (entry["runtime"], entry["precision_requested"], entry["precision_used"]) == ("onnxruntime", "int8", "int8")
    assert (baseline["measure"]["runtime"], baseline["measure"]["precision"]) == ("onnxruntime", "int8")
    checked = runner.invoke(app, ["check", "--baseline", str(out), "--repeats", "3", "--latency", "advisory", "--format", "json"])
    assert checked.exit_code == 0, checked.output
    (result,) = json.loads(checked.stdout)["results"]
    assert (result["runtime"]["runtime"], result["runtime"]["precision_requested"]) == ("onnxruntime", "int8")
    assert result["counts"]["status"] == "pass"
