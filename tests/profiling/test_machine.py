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


def test_an_isa_cap_leaves_what_it_allows_and_sets_the_machine_apart():
    free = spr()
    avx2 = spr(isa_cap="avx2")
    assert avx2.features == ("avx2", "fma", "f16c") and avx2.cpu_features == free.features and avx2.isa_cap == "AVX2"
    assert avx2.label == ("Intel Xeon Platinum 8480+ (AVX2; capped by ONEDNN_MAX_CPU_ISA=AVX2 from "
                          "AVX-512, VNNI, AMX-int8/bf16, fp16), 2 cores")
    assert not avx2.has("avx512_vnni", "amx_int8")
    vnni = spr(isa_cap="AVX512_CORE_VNNI")
    assert vnni.features == ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")
    # a capped run never matches the free CPU's baseline, nor a real AVX2 CPU's: its key names the cap
    assert len({free.key, avx2.key, vnni.key, fingerprint_from_text(SPR, MEMINFO, cores=2, isa_cap="").key}) == 3
    assert spr(isa_cap="").key == free.key and free.to_dict()["cpu_features"] == []
    assert MachineFingerprint.from_dict(avx2.to_dict()) == avx2
    match = compare_machines(free.to_dict(), avx2, 2, 2)
    assert not match.comparable and "ISA cap AVX2 here against none" in match.notes[0]
    # a cap oneDNN knows but the table does not (SSE41) keeps the features yet still sets the key apart
    sse = spr(isa_cap="SSE41")
    assert sse.features == free.features and sse.key != free.key


def test_the_cap_is_read_from_onednn_s_variables():
    from compressbench.profiling.machine import isa_cap_environment, isa_cap_from

    assert isa_cap_from({}) == "" and isa_cap_from({"ONEDNN_MAX_CPU_ISA": "all"}) == ""
    assert isa_cap_from({"ONEDNN_MAX_CPU_ISA": "avx2"}) == "AVX2"
    assert isa_cap_from({"DNNL_MAX_CPU_ISA": "AVX512_CORE"}) == "AVX512_CORE"
    assert isa_cap_environment("avx2") == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert isa_cap_environment("avx512_core_vnni") == {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "ATEN_CPU_CAPABILITY": "avx512"}
    with pytest.raises(ValueError, match="unknown ISA cap 'avx3'; known: avx2, avx2_vnni, avx512_core"):
        isa_cap_environment("avx3")


def test_kernel_names_say_whether_they_ran_above_a_cap():
    from compressbench.profiling.machine import kernel_above_cap, kernel_isa

    assert [kernel_isa(k) for k in ("brgconv_avx512_I8", "jit_avx2_I8", "brgconv_avx512_amx_I8", "jit_uni_I8", "ref_I8")] == [
        "avx512", "avx2", "amx", None, None]  # fmt: skip
    assert kernel_above_cap("jit_avx512_I8", "AVX2") and kernel_above_cap("brgconv_avx512_amx_I8", "AVX512_CORE_BF16")
    assert not kernel_above_cap("jit_avx2_I8", "AVX2") and not kernel_above_cap("jit_avx512_f32", "avx512_core")
    assert not kernel_above_cap("ref_I8", "AVX2") and not kernel_above_cap("jit_avx512_I8", "SSE41")
    # VNNI and bf16 kernels rank above the plain ISA they extend, below the next one
    assert kernel_isa("jit:avx2_vnni") == "avx2_vnni" and kernel_isa("brg:avx512_core_vnni") == "avx512_core_vnni"
    assert kernel_above_cap("jit:avx2_vnni", "AVX2") and not kernel_above_cap("jit:avx2_vnni", "AVX2_VNNI")
    assert kernel_above_cap("brg:avx512_core_vnni", "AVX512_CORE") and not kernel_above_cap("brg:avx512_core_vnni", "AVX512_CORE_VNNI")
    assert kernel_above_cap("jit:avx512_core_bf16", "AVX512_CORE_VNNI") and not kernel_above_cap("jit:avx512_core_bf16", "AVX512_CORE_BF16")
    assert kernel_above_cap("jit_avx512_I8", "AVX2_VNNI") and not kernel_above_cap("jit_avx2_I8", "AVX2_VNNI")


def test_environment_keeps_its_keys_and_adds_the_machine():
    from compressbench.profiling import environment

    env = environment(3)
    assert {"torch", "cpu", "cpu_count", "threads", "python", "platform", "date", "machine", "torch_cpu_capability"} <= set(env)
    assert env["machine"]["threads"] == 3 and env["machine"]["cpu_model"] == env["cpu"]
    assert len(env["machine"]["key"]) == 16


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
