"""Efficiency arithmetic on hand-made cases (exact numbers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.profiling.efficiency import (
    group_by_kind,
    layer_efficiency,
    layer_kind,
    precision_of,
    traffic,
    why_not_faster,
)
from compressbench.profiling.peaks import Peaks

# 100 GMAC/s fp32 (conv), 80 (GEMM), 400 bf16, no int8 unit, 20 GB/s: fp32 ridge 5 MACs/byte
PEAKS = Peaks(fp32_gemm_gmacs=80.0, fp32_conv_gmacs=100.0, bf16_gemm_gmacs=400.0, int8_gemm_gmacs=None,
              bandwidth_gbs=20.0, threads=2, machine_key="k")  # fmt: skip


def test_compute_bound_layer():
    # 1e9 MACs in 20 ms = 50 GMAC/s; 1e8 bytes -> intensity 10 > ridge 5
    e = layer_efficiency(1_000_000_000, 20.0, 100_000_000, "fp32", PEAKS)
    assert e["gmacs_per_s"] == pytest.approx(50.0)
    assert e["intensity"] == pytest.approx(10.0)
    assert e["peak_gmacs"] == 100.0 and e["pct_of_peak"] == pytest.approx(50.0)
    assert e["roof_gmacs"] == 100.0 and e["bound"] == "compute"


def test_memory_bound_layer():
    # depthwise-like: 1e6 MACs over 4e6 bytes (0.25 MACs/byte) in 1 ms -> 1 GMAC/s; roof 0.25 x 20 = 5
    e = layer_efficiency(1_000_000, 1.0, 4_000_000, "fp32", PEAKS)
    assert e["gmacs_per_s"] == pytest.approx(1.0)
    assert e["intensity"] == pytest.approx(0.25)
    assert e["pct_of_peak"] == pytest.approx(1.0)
    assert e["roof_gmacs"] == pytest.approx(5.0) and e["pct_of_roof"] == pytest.approx(20.0)
    assert e["bound"] == "memory"


def test_precision_picks_its_peak_and_ridge():
    assert PEAKS.compute_peak("bf16") == 400.0 and PEAKS.ridge("bf16") == 20.0
    assert PEAKS.compute_peak("int8") == 100.0  # no int8 unit measured: compared with fp32
    e = layer_efficiency(1_000_000_000, 10.0, 100_000_000, "bf16", PEAKS)  # intensity 10 < ridge 20
    assert e["pct_of_peak"] == pytest.approx(25.0) and e["bound"] == "memory"


def test_without_peaks_and_without_macs():
    e = layer_efficiency(None, 2.0, 1000)
    assert e["macs"] == 0 and e["gmacs_per_s"] == 0.0 and e["intensity"] == 0.0
    assert e["pct_of_peak"] is None and e["bound"] is None
    assert layer_efficiency(10, 0.0, 0)["gmacs_per_s"] == 0.0


def test_kinds_bytes_and_precision_of_real_layers():
    dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), dw, nn.BatchNorm2d(8), nn.ReLU())
    assert [layer_kind(m) for m in model] == ["1x1 conv", "depthwise 3x3 conv", "batchnorm", "relu"]
    moved = traffic(model, torch.zeros(1, 3, 4, 4), ["0", "1", "3"])
    # 1x1 conv: input 3*16*4 B, output 8*16*4 B, weights (8*3 + 8)*4 B
    assert moved["0"] == {"input_bytes": 192, "output_bytes": 512, "weight_bytes": 128, "precision": "fp32", "kind": "1x1 conv", "macs": 3 * 8 * 16}
    assert moved["1"]["weight_bytes"] == 8 * 9 * 4 and moved["3"]["weight_bytes"] == 0
    assert moved["1"]["macs"] == 8 * 16 * 9 and moved["3"]["macs"] is None  # depthwise: 1 input channel per group
    assert precision_of(nn.Linear(2, 2).to(torch.bfloat16)) == "bf16"


def rows() -> list[dict]:
    """Depthwise convs: 41% of the time at 3% of peak; 3x3 convs: 40% at 60%; relu: 19%, no MACs."""
    return [
        {"kind": "depthwise 3x3 conv", "latency_ms": 41.0, "macs": 123_000_000, "peak_gmacs": 100.0, "bound": "memory"},
        {"kind": "3x3 conv", "latency_ms": 40.0, "macs": 2_400_000_000, "peak_gmacs": 100.0, "bound": "compute"},
        {"kind": "relu", "latency_ms": 19.0, "macs": 0, "peak_gmacs": 100.0, "bound": "memory"},
    ]


def test_group_by_kind_exact():
    groups = group_by_kind(rows())
    assert [g["kind"] for g in groups] == ["depthwise 3x3 conv", "3x3 conv", "relu"]
    dw = groups[0]
    assert dw["share_pct"] == pytest.approx(41.0) and dw["gmacs_per_s"] == pytest.approx(3.0)
    assert dw["pct_of_peak"] == pytest.approx(3.0)
    assert groups[1]["pct_of_peak"] == pytest.approx(60.0)


def test_why_not_faster_sentence():
    assert why_not_faster(rows()) == (
        "depthwise 3x3 convs run at 3% of peak and take 41% of the time; layers without MACs (relu) take 19%; "
        "memory-bound layers with MACs take 41% (fewer bytes, not fewer MACs, would help them)."
    )
    efficient = [{"kind": "3x3 conv", "latency_ms": 10.0, "macs": 600_000_000, "peak_gmacs": 100.0, "bound": "compute"}]
    assert why_not_faster(efficient) == "3x3 convs take 100% of the time at 60% of peak (compute-bound: fewer MACs is what helps)."
    assert why_not_faster([]) == ""
    tiny = [{"kind": "3x3 conv", "latency_ms": 10.0, "macs": 2_000_000, "peak_gmacs": 100.0, "bound": "memory"}]
    assert why_not_faster(tiny).startswith("3x3 convs run at 0.2% of peak and take 100% of the time")
