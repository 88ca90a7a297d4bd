"""``compressbench bench`` and ``compressbench report``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import SuiteArgument, SuiteOption, command_form, emit, prepare_output, suite_path
from compressbench.report.render import plural
from compressbench.suite import cache_dir


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
    import compressbench.api as api
    from compressbench.report.comparison_tables import comparison_sections

    prepare_output(fmt, output)
    results = command_form(api.bench)(
        suite_path(suite, suite_option), output=output, only=only, use_cache=not no_cache, profiles=not no_profiles,
        show_progress=True,
    )
    cached = results["cached"]
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
    import compressbench.api as api

    written = command_form(api.report)(results, output, akd_budget=akd_budget)
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
