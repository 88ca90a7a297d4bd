"""``compressbench machine``: the fingerprint, health and peaks as a record."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.profiling import peaks as peaks_module
from compressbench.profiling.peaks import Peaks

runner = CliRunner()


def test_machine_record(monkeypatch):
    monkeypatch.setattr(peaks_module, "measure_peaks", lambda machine, threads, budget_s=0: Peaks(10.0, 8.0, None, None, 2.0, threads, machine.key))
    result = runner.invoke(app, ["machine", "--threads", "1", "--refresh", "--format", "json"])  # not an earlier test's cached peaks
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["machine"]["threads"] == 1 and len(rec["machine"]["key"]) == 16
    assert rec["peaks"]["fp32_gemm_gmacs"] == 10.0 and rec["peaks"]["machine_key"] == rec["machine"]["key"]
    assert {"healthy", "warnings"} <= set(rec["health"])
    bare = json.loads(runner.invoke(app, ["machine", "--no-peaks", "--format", "json"]).stdout)
    assert bare["peaks"] is None
    bad = runner.invoke(app, ["machine", "--threads", "0"])
    assert bad.exit_code == 2 and bad.stderr == "error: --threads must be a positive integer, got 0\n"
