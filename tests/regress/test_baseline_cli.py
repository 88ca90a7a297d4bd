"""``compressbench baseline``: refuses an unhealthy machine unless forced; ``--add`` keeps other machines'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compressbench.cli import app, gate_cmd
from compressbench.profiling.health import Health
from compressbench.profiling.machine import fingerprint_from_text
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

    def create(suite, settings, show_progress=True):
        entry = {"name": "teacher", "fingerprint": "f", "params": 1, "macs": 1, "samples": {"model_ms": [1.0], "ruler_ms": [1.0]}}
        one = {"ruler": RULER, "settings": settings.__dict__, "machine": state["machine"].to_dict(), "env": {}, "entries": [entry]}
        return {"format": FORMAT, "baselines": [one]}

    monkeypatch.setattr(gate_cmd, "create_baseline", create)
    monkeypatch.setattr(gate_cmd, "check_health", lambda threads=None: state["health"])
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
        f'[[variant]]\nname = "small-prune"\nconfig = "{config}"\nmethod = "prune"\n'
    )
    out = tmp_path / "baseline.json"
    recorded = runner.invoke(app, ["baseline", str(suite), "-o", str(out), "--repeats", "3", "--force", "--format", "json"])
    assert recorded.exit_code == 0, recorded.output
    baseline = json.loads(out.read_text())["baselines"][0]
    assert baseline["measure"]["calib"] == 2 and baseline["measure"]["input_size"] == 64
    assert gate_cmd.build_measure(baseline, type("S", (), {"input_size": 64, "seed": 0}))["calib"] == 2
    checked = runner.invoke(app, ["check", "--baseline", str(out), "--repeats", "3", "--latency", "advisory", "--format", "json"])
    assert checked.exit_code == 0, checked.output
    results = json.loads(checked.stdout)["results"]
    assert [r["name"] for r in results] == ["small", "small-prune"] and all(r["counts"]["status"] == "pass" for r in results)
