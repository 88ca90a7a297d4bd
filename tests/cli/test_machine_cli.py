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


def test_max_isa_reruns_the_command_capped_and_the_record_names_the_cap():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    done = subprocess.run([sys.executable, "-m", "compressbench", "--max-isa", "avx2", "machine", "--no-peaks", "--format", "json"],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    machine = json.loads(done.stdout)["machine"]
    assert machine["isa_cap"] == "AVX2" and machine["features"] == [f for f in ("avx2", "fma", "f16c") if f in machine["cpu_features"]]
    assert "capped by ONEDNN_MAX_CPU_ISA=AVX2" in machine["label"]


def test_an_unknown_isa_cap_is_one_line():
    result = runner.invoke(app, ["--max-isa", "avx3", "machine"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: Invalid value for '--max-isa': unknown ISA cap 'avx3'; known: avx2, avx2_vnni, avx512_core, "
        "avx512_core_vnni, avx512_core_bf16 (see 'root --help')"  # CliRunner names the program 'root'
    ]
