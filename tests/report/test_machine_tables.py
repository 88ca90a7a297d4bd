"""The machine table: one row per item, peaks and the fp32 ridge computed from the record."""

from __future__ import annotations

from compressbench.profiling.machine import fingerprint_from_text
from compressbench.report.machine_tables import machine_section

AMD = fingerprint_from_text("model name\t: AMD EPYC\nflags\t: avx2 avx512f avx512_vnni\n", cores=2)


def _record(peaks: dict | None) -> dict:
    return {"machine": AMD.to_dict(), "health": {"healthy": False, "warnings": ["oversubscribed"], "checks": {}}, "peaks": peaks}


def test_items_peaks_and_ridge():
    peaks = {"fp32_gemm_gmacs": 80.0, "fp32_conv_gmacs": 100.0, "bf16_gemm_gmacs": None, "int8_gemm_gmacs": 250.0,
             "bandwidth_gbs": 20.0, "threads": 2, "machine_key": AMD.key, "healthy": True}  # fmt: skip
    section = machine_section(_record(peaks))
    rows = dict(zip(section.frame["item"], section.frame["value"]))
    assert rows["cpu model"] == "AMD EPYC" and rows["key"] == AMD.key
    assert rows["peak bf16 GEMM (GMAC/s)"] == "- (no bf16 units)" and rows["peak int8 GEMM (GMAC/s)"] == "250.0"
    assert rows["fp32 ridge (MACs/byte)"] == "5.0"  # the best fp32 peak (conv, 100) over 20 GB/s
    assert rows["peaks"] == "cached"
    assert section.notes == ["measurement health: oversubscribed"]


def test_without_peaks_the_table_stops_at_the_fingerprint():
    section = machine_section(_record(None))
    assert "peaks" not in set(section.frame["item"]) and len(section.frame) == 11
