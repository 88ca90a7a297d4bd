"""``compressbench bench`` and ``compressbench report``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import SuiteArgument, SuiteOption, check_results_path, emit, prepare_output, suite_path
from compressbench.report import render_json, write_atomic
from compressbench.report.render import plural
from compressbench.suite import cache_dir, read_suite


@app.command("bench")
def bench_command(
    suite: Optional[Path] = SuiteArgument,
    suite_option: Optional[Path] = SuiteOption,
    output: Path = typer.Option(
        Path("results.json"), "--output", "-o", help="results JSON to write (the input of 'compressbench report')"
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="how the comparison is printed: table | md | csv | json"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated variant names (the first is the reference)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="rebuild variants even when cached"),
    no_profiles: bool = typer.Option(False, "--no-profiles", help="skip the per-variant per-layer profiles"),
) -> None:
    """Build and measure every variant of a suite, print the comparison, write one results JSON.

    \b
    Example:
      compressbench bench benchmarks/suite.toml -o results.json --only teacher,quantize
    """
    from compressbench.bench import run_suite
    from compressbench.report.comparison_tables import comparison_sections

    prepare_output(fmt, output)
    parsed = read_suite(suite_path(suite, suite_option))
    if only:
        parsed.variants = [parsed.get(name.strip()) for name in only.split(",") if name.strip()]
    results = run_suite(parsed, use_cache=not no_cache, profiles=not no_profiles)
    cached = results["cached"]
    write_atomic(output, render_json(results))
    emit(results["comparison"], comparison_sections(results["comparison"]), fmt, None)
    if cached:
        typer.echo(
            f"{plural(len(cached), 'variant')} loaded from the cache {cache_dir()} ({', '.join(cached)}); "
            "--no-cache rebuilds them",
            err=True,
        )
    typer.echo(f"wrote {output}; next: compressbench report {output}", err=True)


@app.command("report")
def report_command(
    results: Path = typer.Argument(..., help="results file from 'compressbench bench'"),
    output: Path = typer.Option(
        Path("reports/REPORT.md"), "--output", "-o", help="Markdown file (its folder is created); PNGs are written next to it"
    ),
    akd_budget: float = typer.Option(1.0, "--akd-budget", help="AKD (px) within which the fastest variant is 'best'"),
) -> None:
    """Write a Markdown report with tables, a Pareto plot, per-layer bars and keypoint overlays.

    \b
    Example:
      compressbench report results.json -o reports/REPORT.md --akd-budget 1.0
    """
    from compressbench.errors import CompressbenchError
    from compressbench.report import check_writable
    from compressbench.report.markdown_report import read_results, write_report

    if not akd_budget > 0:  # also refuses nan
        raise CompressbenchError(f"--akd-budget must be a positive number of pixels, got {akd_budget}")
    doc = read_results(results)  # the input first: a missing input is the error to report
    check_results_path(output)
    if output.parent.exists() and not output.parent.is_dir():
        raise CompressbenchError(f"cannot write {output}: {output.parent} is a file")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise CompressbenchError(f"cannot create the folder of {output}: {reason}") from None
    check_writable(output)
    written = write_report(doc, output, akd_budget, command=f"compressbench report {results} -o {output}")
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
