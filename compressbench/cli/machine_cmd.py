"""``compressbench machine``: this machine's fingerprint, measurement health and measured peaks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, command_form, emit, prepare_output, require_positive


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
    import compressbench.api as api
    from compressbench.report.machine_tables import machine_section

    require_positive(threads=threads)
    prepare_output(fmt, output)
    record = command_form(api.machine)(threads, peaks=peaks, refresh=refresh)
    emit(record, [machine_section(record)], fmt, output)
