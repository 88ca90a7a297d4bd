"""``compressbench bench`` and ``compressbench report``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, emit
from compressbench.report import check_format, check_writable, render_json, write_atomic
from compressbench.suite import read_suite


@app.command("bench")
def bench_command(
    suite: Path = typer.Argument(..., help="suite file, e.g. benchmarks/suite.toml"),
    out: Path = typer.Option(Path("results.json"), "--out", help="results file to write"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated variant names (the first is the reference)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="rebuild variants even when cached"),
    no_profiles: bool = typer.Option(False, "--no-profiles", help="skip the per-variant per-layer profiles"),
    fmt: str = FormatOption,
) -> None:
    """Build and measure every variant of a suite; write one results JSON, then print the comparison."""
    from compressbench.bench import run_suite
    from compressbench.comparison.sections import comparison_sections

    check_format(fmt)
    check_writable(out)
    parsed = read_suite(suite)
    if only:
        parsed.variants = [parsed.get(name.strip()) for name in only.split(",") if name.strip()]
    results = run_suite(parsed, use_cache=not no_cache, profiles=not no_profiles)
    write_atomic(out, render_json(results))
    typer.echo(f"wrote {out}", err=True)
    emit(results["comparison"], comparison_sections(results["comparison"]), fmt, None)


@app.command("report")
def report_command(
    results: Path = typer.Argument(..., help="results file from 'compressbench bench'"),
    output: Path = typer.Option(Path("reports/REPORT.md"), "--output", "-o", help="Markdown file; PNGs are written next to it"),
    akd_budget: float = typer.Option(1.0, "--akd-budget", help="AKD (px) within which the fastest variant is 'best'"),
) -> None:
    """Write a Markdown report with tables, a Pareto plot, per-layer bars and keypoint overlays."""
    from compressbench.errors import CompressbenchError
    from compressbench.report.markdown_report import read_results, write_report

    if akd_budget <= 0:
        raise CompressbenchError(f"--akd-budget must be positive, got {akd_budget}")
    check_writable(output)
    doc = read_results(results)
    written = write_report(doc, output, akd_budget, command=f"compressbench report {results} -o {output}")
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
