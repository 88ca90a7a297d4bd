"""Machine fingerprints parsed from fixed /proc samples (never the real machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compressbench.profiling.machine import (
    MachineFingerprint,
    compare_machines,
    fingerprint_from_text,
    parse_cpuinfo,
    parse_meminfo_gb,
    short_model,
)

FIXTURES = Path(__file__).parent / "fixtures"
SPR = (FIXTURES / "cpuinfo_sapphire_rapids.txt").read_text()
EPYC = (FIXTURES / "cpuinfo_epyc.txt").read_text()
MEMINFO = (FIXTURES / "meminfo.txt").read_text()


def spr(**kwargs) -> MachineFingerprint:
    return fingerprint_from_text(SPR, MEMINFO, **{"cores": 2, "threads": 2, "torch_version": "2.13.0+cpu", **kwargs})


def test_intel_with_amx():
    info = parse_cpuinfo(SPR)
    assert (info.model, info.vendor, info.logical_cpus) == ("Intel(R) Xeon(R) Platinum 8480+", "Intel", 4)
    fp = spr(runtimes={"onnxruntime": "1.32.0"})
    assert fp.features == (
        "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
        "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    )  # fmt: skip
    assert fp.label == "Intel Xeon Platinum 8480+ (AVX-512, VNNI, AMX-int8/bf16, fp16), 2 cores"
    assert fp.memory_gb == 25.3  # 24,683,652 KiB
    assert (fp.cores, fp.logical_cpus, fp.threads) == (2, 4, 2)
    assert fp.has("amx_int8") and not fp.has("sve")
    assert fp.to_dict()["runtimes"] == {"onnxruntime": "1.32.0"}


def test_amd_without_amx():
    fp = fingerprint_from_text(EPYC, "", cores=2, threads=1)
    assert fp.vendor == "AMD" and fp.cpu_model == "AMD EPYC 7B13 64-Core Processor"
    assert fp.features == ("avx2", "fma", "f16c")
    assert fp.label == "AMD EPYC 7B13 64-Core (AVX2), 2 cores"
    assert fp.memory_gb == 0.0 and fp.logical_cpus == 2
    assert not fp.has("amx_tile", "amx_int8", "avx512f")


def test_key_ignores_threads_date_and_versions_but_not_cpu_or_cores():
    base = spr()
    assert spr(threads=1, torch_version="9.9", runtimes={"openvino": "2025.1"}).key == base.key
    assert spr(cores=4).key != base.key
    assert fingerprint_from_text(EPYC, MEMINFO, cores=2, threads=2).key != base.key
    assert len(base.key) == 16


def test_round_trip_through_dict():
    fp = spr(runtimes={"onnxruntime": "1.32.0"}, arch="x86_64")
    doc = fp.to_dict()
    assert doc["key"] == fp.key and doc["label"] == fp.label
    assert MachineFingerprint.from_dict(doc) == fp


def test_small_texts():
    assert parse_meminfo_gb("MemFree: 1 kB\n") == 0.0
    assert parse_cpuinfo("").model == "unknown"
    assert short_model("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz") == "Intel Core i7-8700"
    arm = parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd asimddp sve bf16 i8mm\nCPU implementer\t: 0x41\n")
    assert arm.vendor == "Arm" and {"sve", "bf16"} <= arm.flags


def test_compare_machines():
    here = spr()
    same = compare_machines(here.to_dict(), here, 2, 2)
    assert same.comparable and same.notes == ()
    other = compare_machines(fingerprint_from_text(EPYC, "", cores=2).to_dict(), here, 2, 2)
    assert other.same_cpu is False and not other.comparable
    assert other.notes == ("other CPU: baseline recorded on AMD EPYC 7B13 64-Core (AVX2), 2 cores, "
                           "checked on Intel Xeon Platinum 8480+ (AVX-512, VNNI, AMX-int8/bf16, fp16), 2 cores "
                           "(this CPU adds avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni, avx512_bf16, avx512_fp16, "
                           "amx_tile, amx_int8, amx_bf16; model 'Intel(R) Xeon(R) Platinum 8480+' against "
                           "'AMD EPYC 7B13 64-Core Processor')",)
    threads = compare_machines(here.to_dict(), here, 1, 2)
    assert threads.same_cpu and not threads.same_threads and not threads.comparable
    assert threads.notes == ("thread count differs: baseline recorded with 1 threads, checked with 2",)
    legacy = compare_machines(None, here, 2, 2, reference_cpu="AMD EPYC")
    assert legacy.same_cpu is False and legacy.notes[0].startswith("other CPU: the baseline names 'AMD EPYC'")
    # a CPU name alone never makes a baseline comparable: it does not say which ISA ran
    same_name = compare_machines(None, here, 2, 2, reference_cpu=here.cpu_model)
    assert same_name.same_cpu is None and not same_name.comparable
    assert same_name.notes[0].startswith("other CPU: the baseline names 'Intel(R) Xeon(R) Platinum 8480+' and carries no fingerprint")


def test_the_difference_names_the_features_one_cpu_lacks():
    from compressbench.profiling.machine import feature_difference

    avx512 = fingerprint_from_text(EPYC, "", cores=2)
    avx512 = type(avx512)(**{**avx512.__dict__, "features": avx512.features + ("avx512f", "avx512_vnni")})
    avx2 = fingerprint_from_text(EPYC, "", cores=2)
    assert feature_difference(avx512, avx2) == "this CPU lacks avx512f, avx512_vnni"
    assert feature_difference(avx2, avx512) == "this CPU adds avx512f, avx512_vnni"
    assert feature_difference(avx2, fingerprint_from_text(EPYC, "", cores=8)) == "8 cores here against 2"
    assert feature_difference(avx2, avx2) == ""


def test_environment_keeps_its_keys_and_adds_the_machine():
    from compressbench.profiling import environment

    env = environment(3)
    assert {"torch", "cpu", "cpu_count", "threads", "python", "platform", "date", "machine"} <= set(env)
    assert env["machine"]["threads"] == 3 and env["machine"]["cpu_model"] == env["cpu"]
    assert len(env["machine"]["key"]) == 16


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
