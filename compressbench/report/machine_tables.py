"""The table of ``compressbench machine``: fingerprint, health and measured peaks, one item a row."""

from __future__ import annotations

import pandas as pd

from compressbench.profiling.health import Health
from compressbench.profiling.peaks import Peaks
from compressbench.report.render import Section


def _rate(value: float | None, missing: str) -> str:
    return f"{value:.1f}" if value else missing


def machine_section(record: dict) -> Section:
    """One two-column table of a :func:`~compressbench.profiling.peaks.describe_machine` record."""
    machine = record["machine"]
    runtimes = machine.get("runtimes") or {}
    items = [
        ("label", machine["label"]), ("key", machine["key"]), ("cpu model", machine["cpu_model"]), ("vendor", machine["vendor"]),
        ("speed-deciding features", " ".join(machine["features"]) or "-"), ("cores available", machine["cores"]),
        ("logical cpus", machine["logical_cpus"]), ("memory (GB)", machine["memory_gb"]), ("torch", machine["torch"]),
        ("threads", machine["threads"]), ("runtimes", ", ".join(f"{k} {v}" for k, v in dict(runtimes).items()) or "-"),
    ]  # fmt: skip
    if record.get("peaks"):
        peaks = Peaks.from_dict(record["peaks"])
        items += [
            ("peak fp32 GEMM (GMAC/s)", _rate(peaks.fp32_gemm_gmacs, "-")), ("peak fp32 3x3 conv (GMAC/s)", _rate(peaks.fp32_conv_gmacs, "-")),
            ("peak bf16 GEMM (GMAC/s)", _rate(peaks.bf16_gemm_gmacs, "- (no bf16 units)")),
            ("peak int8 GEMM (GMAC/s)", _rate(peaks.int8_gemm_gmacs, "- (no int8 units / kernel)")),
            ("memory bandwidth (GB/s)", _rate(peaks.bandwidth_gbs, "-")), ("fp32 ridge (MACs/byte)", f"{peaks.ridge('fp32'):.1f}"),
            ("peaks", "cached" if peaks.healthy else "measured on a busy machine: not cached, likely below the real ones"),
        ]  # fmt: skip
    health = Health(tuple(record["health"]["warnings"]))
    frame = pd.DataFrame([{"item": k, "value": str(v)} for k, v in items])
    return Section("This machine", frame, [health.line()])
