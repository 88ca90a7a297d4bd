"""``compressbench machine``: this machine's fingerprint, measurement health and measured peaks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, emit, prepare_output, require_positive
from compressbench.report.render import Section


@app.command("machine")
def machine_command(
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads (default: torch's)"),
    peaks: bool = typer.Option(True, "--peaks/--no-peaks", help="measure (or read from the cache) this machine's peaks"),
    refresh: bool = typer.Option(False, "--refresh", help="measure the peaks again instead of reading the cache"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """What timings here are comparable with: CPU, ISA features, cores, fingerprint key, health, peaks.

    \b
    Example:
      compressbench machine --threads 2
    """
    from compressbench.profiling.health import check_health
    from compressbench.profiling.machine import this_machine
    from compressbench.profiling.peaks import machine_peaks

    require_positive(threads=threads)
    prepare_output(fmt, output)
    fingerprint = this_machine(threads)
    health = check_health(fingerprint.threads)
    record = {"machine": fingerprint.to_dict(), "health": health.to_dict(), "peaks": None}
    items = [
        ("label", fingerprint.label), ("key", fingerprint.key), ("cpu model", fingerprint.cpu_model), ("vendor", fingerprint.vendor),
        ("speed-deciding features", " ".join(fingerprint.features) or "-"), ("cores available", fingerprint.cores),
        ("logical cpus", fingerprint.logical_cpus), ("memory (GB)", fingerprint.memory_gb), ("torch", fingerprint.torch),
        ("threads", fingerprint.threads), ("runtimes", ", ".join(f"{k} {v}" for k, v in fingerprint.runtimes) or "-"),
    ]  # fmt: skip
    if peaks:
        measured = machine_peaks(fingerprint.threads, refresh=refresh, machine=fingerprint)
        record["peaks"] = measured.to_dict()
        items += [
            ("peak fp32 GEMM (GMAC/s)", f"{measured.fp32_gemm_gmacs:.1f}"), ("peak fp32 3x3 conv (GMAC/s)", f"{measured.fp32_conv_gmacs:.1f}"),
            ("peak bf16 GEMM (GMAC/s)", f"{measured.bf16_gemm_gmacs:.1f}" if measured.bf16_gemm_gmacs else "- (no bf16 units)"),
            ("peak int8 GEMM (GMAC/s)", f"{measured.int8_gemm_gmacs:.1f}" if measured.int8_gemm_gmacs else "- (no int8 units / kernel)"),
            ("memory bandwidth (GB/s)", f"{measured.bandwidth_gbs:.1f}"), ("fp32 ridge (MACs/byte)", f"{measured.ridge('fp32'):.1f}"),
            ("peaks", "cached" if measured.healthy else "measured on a busy machine: not cached, likely below the real ones"),
        ]  # fmt: skip
    frame = pd.DataFrame([{"item": k, "value": str(v)} for k, v in items])
    emit(record, [Section("This machine", frame, [health.line()])], fmt, output)
