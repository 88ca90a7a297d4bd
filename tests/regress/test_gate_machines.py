"""The gate knows the machine: fingerprints, thread counts, several baselines per file, old files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.profiling.machine import fingerprint_from_text
from compressbench.regress import CheckSettings
from compressbench.regress import baseline as baseline_module
from compressbench.regress.baseline import (
    FORMAT,
    FORMAT_V1,
    add_baseline,
    read_baseline,
    read_baseline_file,
    run_check,
    select_baseline,
)
from compressbench.regress.measure import RULER, Samples, architecture_fingerprint

FIXTURES = Path(__file__).parents[1] / "profiling" / "fixtures"
INTEL = fingerprint_from_text((FIXTURES / "cpuinfo_sapphire_rapids.txt").read_text(), cores=2, threads=2)
AMD = fingerprint_from_text((FIXTURES / "cpuinfo_epyc.txt").read_text(), cores=2, threads=2)
SETTINGS = CheckSettings(input_size=16, repeats=8, warmup=0, threads=2, bootstrap=200)
BASE = Samples([1.0 + i / 100 for i in range(8)], [1.0] * 8)  # fixed ratios 1.00 .. 1.07
SLOW = Samples([2.0 + i / 100 for i in range(8)], [1.0] * 8)  # twice as slow
TINY_MACS = 14 * 14 * 2 * 3 * 9  # a 3x3 conv from 3 to 2 channels on the 16x16 check input: 14x14 outputs


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return self.conv(x)


def one_baseline(machine, threads: int = 2, samples: Samples = BASE) -> dict:
    module = Tiny()
    entry = {"name": "tiny", "spec": {}, "fingerprint": architecture_fingerprint(module), "params": 56, "macs": TINY_MACS, "samples": samples.to_dict()}
    env = {"cpu": machine.cpu_model, "machine": machine.to_dict()}
    return {"ruler": RULER, "settings": {**SETTINGS.__dict__, "threads": threads}, "machine": machine.to_dict(), "env": env, "entries": [entry]}


def decide(file_doc: dict, machine, settings: CheckSettings, candidate: Samples, monkeypatch) -> dict:
    monkeypatch.setattr(baseline_module, "measure_relative", lambda *a, **k: candidate)
    chosen = select_baseline(file_doc, machine, settings.threads)
    return run_check(chosen, settings, {"tiny": Tiny()}, show_progress=False)


def test_matching_fingerprint_gates_latency(monkeypatch):
    doc = {"format": FORMAT, "baselines": [one_baseline(INTEL)]}
    slow = decide(doc, INTEL, SETTINGS, SLOW, monkeypatch)
    assert slow["exit_code"] == 1 and slow["latency_mode"] == "gate" and slow["headline"] is None
    assert slow["machine_match"] == {"same_cpu": True, "same_threads": True, "comparable": True, "notes": []}
    assert decide(doc, INTEL, SETTINGS, BASE, monkeypatch)["exit_code"] == 0


def test_foreign_fingerprint_makes_latency_advisory(monkeypatch):
    doc = {"format": FORMAT, "baselines": [one_baseline(AMD)]}
    result = decide(doc, INTEL, SETTINGS, SLOW, monkeypatch)
    assert result["exit_code"] == 0 and result["latency_mode"] == "advisory"
    assert result["results"][0]["latency"]["status_name"] == "regression"  # still reported
    assert result["headline"] == (
        "other CPU: baseline recorded on AMD EPYC 7B13 64-Core (AVX2), 2 cores, checked on "
        "Intel Xeon Platinum 8480+ (AVX-512, VNNI, AMX-int8/bf16, fp16), 2 cores (this CPU adds avx512f, avx512bw, "
        "avx512vl, avx512_vnni, avx_vnni, avx512_bf16, avx512_fp16, amx_tile, amx_int8, amx_bf16; model "
        "'Intel(R) Xeon(R) Platinum 8480+' against 'AMD EPYC 7B13 64-Core Processor'); "
        "latency advisory (pass --latency strict to gate it anyway)"
    )
    strict = decide(doc, INTEL, replace(SETTINGS, latency="strict"), SLOW, monkeypatch)
    assert strict["exit_code"] == 1 and strict["latency_mode"] == "gate"
    assert strict["headline"].endswith("latency gated anyway (--latency strict)")


def test_a_busier_machine_is_flagged_by_the_ruler_on_the_same_cpu_only(monkeypatch):
    busy = Samples([6.0 + i / 100 for i in range(8)], [6.0] * 8)  # same ratios, six times the milliseconds
    same = decide({"format": FORMAT, "baselines": [one_baseline(INTEL)]}, INTEL, SETTINGS, busy, monkeypatch)
    assert same["ruler_warnings"][0].startswith("the reference workload ran 6.0x slower")
    other = decide({"format": FORMAT, "baselines": [one_baseline(AMD)]}, INTEL, SETTINGS, busy, monkeypatch)
    assert other["ruler_warnings"] == []  # another CPU's milliseconds say nothing about this one


def test_thread_mismatch_is_flagged_and_advisory(monkeypatch):
    doc = {"format": FORMAT, "baselines": [one_baseline(INTEL, threads=1)]}
    result = decide(doc, INTEL, SETTINGS, SLOW, monkeypatch)
    assert result["exit_code"] == 0 and result["latency_mode"] == "advisory"
    assert result["headline"].startswith("thread count differs: baseline recorded with 1 threads, checked with 2;")


def test_file_with_one_baseline_per_machine(monkeypatch):
    intel, amd = one_baseline(INTEL), one_baseline(AMD, samples=SLOW)
    doc, notes = add_baseline(None, {"format": FORMAT, "baselines": [amd]})
    doc, notes = add_baseline(doc, {"format": FORMAT, "baselines": [intel]})
    assert notes == [] and [b["machine"]["key"] for b in doc["baselines"]] == [AMD.key, INTEL.key]
    assert select_baseline(doc, INTEL, 2)["machine"]["key"] == INTEL.key
    assert select_baseline(doc, AMD, 2)["machine"]["key"] == AMD.key
    # a fresh baseline of this machine replaces its old one and keeps the other machine's
    newer = one_baseline(INTEL, samples=SLOW)
    doc, notes = add_baseline(doc, {"format": FORMAT, "baselines": [newer]})
    assert [b["machine"]["key"] for b in doc["baselines"]] == [AMD.key, INTEL.key]
    assert doc["baselines"][1]["entries"][0]["samples"]["model_ms"][0] == 2.0
    assert notes == [f"replaced the baseline of {INTEL.label}"]
    # the AMD baseline's slow samples against Intel's fast ones: Intel's machine picks its own, passes
    assert decide(doc, AMD, SETTINGS, SLOW, monkeypatch)["exit_code"] == 0
    third = fingerprint_from_text((FIXTURES / "cpuinfo_epyc.txt").read_text(), cores=8)
    chosen = select_baseline(doc, third, 2)
    assert not chosen["match"]["comparable"]
    assert chosen["match"]["notes"][-1].startswith("no baseline for this machine among 2 (")


def test_version_1_baseline_is_read_with_a_note(tmp_path):
    legacy = {k: v for k, v in one_baseline(AMD).items() if k != "machine"}
    legacy["env"] = {"cpu": "AMD EPYC"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": FORMAT_V1, **legacy}))
    doc = read_baseline_file(path)
    assert doc.legacy and len(doc["baselines"]) == 1 and "legacy" not in doc.to_json()  # written back as version 2
    foreign = read_baseline(path, INTEL, 2)
    assert foreign["match"]["same_cpu"] is False and not foreign["match"]["comparable"]
    assert foreign["match"]["notes"][0].startswith("other CPU: the baseline names 'AMD EPYC' and carries no fingerprint")
    legacy["env"] = {"cpu": INTEL.cpu_model}
    path.write_text(json.dumps({"format": FORMAT_V1, **legacy}))
    same_name = read_baseline(path, INTEL, 2)  # the same CPU name says nothing of the ISA: never comparable
    assert same_name["match"]["same_cpu"] is None and not same_name["match"]["comparable"]
    assert "carries no fingerprint" in same_name["match"]["notes"][0]


def test_committed_baseline_reads_without_traceback():
    committed = Path(__file__).parents[2] / "benchmarks" / "baseline.json"
    chosen = read_baseline(committed, INTEL, 2)
    assert chosen["entries"] and chosen["match"]["notes"]


def test_add_drops_baselines_of_another_ruler():
    old = {**one_baseline(AMD), "ruler": "conv-v1"}
    doc, notes = add_baseline({"format": FORMAT, "baselines": [old]}, {"format": FORMAT, "baselines": [one_baseline(INTEL)]})
    assert len(doc["baselines"]) == 1 and notes[0].startswith("dropped the baseline of AMD EPYC")
    with pytest.raises(CompressbenchError, match="ruler conv-v1"):
        select_baseline({"format": FORMAT, "baselines": [old]}, INTEL, 2)


def test_add_to_a_version_1_file_drops_its_baseline_without_fingerprint(tmp_path):
    legacy = {k: v for k, v in one_baseline(AMD).items() if k != "machine"}
    legacy["env"] = {"cpu": "AMD EPYC"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": FORMAT_V1, **legacy}))
    doc, notes = add_baseline(read_baseline_file(path), {"format": FORMAT, "baselines": [one_baseline(INTEL)]})
    assert notes == ["dropped the baseline of AMD EPYC (no machine fingerprint: it can never gate latency; re-record it on its machine)"]
    assert doc["format"] == FORMAT and [b["machine"]["key"] for b in doc["baselines"]] == [INTEL.key]


def test_the_avx2_false_alarm_cannot_happen(monkeypatch):
    """The issue's case: an AVX2-only AMD EPYC checked against a file holding a name-only "AMD EPYC"
    baseline and an AVX-512 AMD EPYC's fingerprinted one; the int8 entry reads much slower here."""
    avx512 = fingerprint_from_text("model name\t: AMD EPYC\nvendor_id\t: AuthenticAMD\nflags\t: avx2 fma avx512f avx512bw "
                                   "avx512vl avx512_vnni avx512_bf16\n", cores=2, threads=2)
    avx2 = fingerprint_from_text("model name\t: AMD EPYC\nvendor_id\t: AuthenticAMD\nflags\t: avx2 fma\n", cores=2, threads=2)
    legacy = {k: v for k, v in one_baseline(avx512).items() if k != "machine"}
    legacy["env"] = {"cpu": "AMD EPYC"}
    doc = {"format": FORMAT, "baselines": [legacy, one_baseline(avx512)]}
    result = decide(doc, avx2, SETTINGS, SLOW, monkeypatch)
    assert result["results"][0]["latency"]["status_name"] == "regression"  # reported ...
    assert result["exit_code"] == 0 and result["latency_mode"] == "advisory"  # ... never gated
    assert result["machine_match"]["same_cpu"] is False  # the fingerprinted baseline is the nearest, not the name-only one
    assert result["headline"].startswith(
        "other CPU: baseline recorded on AMD EPYC (AVX-512, VNNI, bf16), 2 cores, checked on AMD EPYC (AVX2), 2 cores "
        "(this CPU lacks avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16)"
    )
    only_name = decide({"format": FORMAT, "baselines": [legacy]}, avx2, SETTINGS, SLOW, monkeypatch)
    assert only_name["exit_code"] == 0 and only_name["latency_mode"] == "advisory"
    assert only_name["headline"].startswith("other CPU: the baseline names 'AMD EPYC' and carries no fingerprint")


def test_a_count_that_cannot_be_verified_is_inconclusive_and_a_grown_one_fails_across_cpus(monkeypatch):
    unknown = one_baseline(INTEL)
    unknown["entries"][0]["macs"] = None
    result = decide({"format": FORMAT, "baselines": [unknown]}, INTEL, SETTINGS, BASE, monkeypatch)
    assert result["exit_code"] == 3
    assert result["results"][0]["counts"]["reason"] == "cannot verify: macs unknown in the baseline (record the baseline again)"
    grown = one_baseline(AMD)
    grown["entries"][0]["params"] = 55  # the model here has one weight more than recorded
    across = decide({"format": FORMAT, "baselines": [grown]}, INTEL, SETTINGS, BASE, monkeypatch)
    assert across["latency_mode"] == "advisory" and across["exit_code"] == 1  # counts gate on any CPU
    assert across["results"][0]["counts"]["reason"] == "grew: params 55 -> 56"


def test_a_check_with_nothing_to_rebuild_is_a_usage_error():
    with pytest.raises(CompressbenchError, match="nothing to check"):
        run_check(select_baseline({"format": FORMAT, "baselines": [one_baseline(INTEL)]}, INTEL, 2), SETTINGS, {})
