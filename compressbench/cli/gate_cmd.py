"""``compressbench baseline`` and ``compressbench check``: the CI latency gate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import (
    FormatOption,
    OutputOption,
    SuiteArgument,
    SuiteOption,
    command_form,
    emit,
    prepare_output,
    require_positive,
    suite_path,
)
from compressbench.report.gate_tables import baseline_section, check_section
from compressbench.report.render import plural
from compressbench.runtimes import PRECISIONS, RUNTIMES


@app.command("baseline")
def baseline_command(
    suite: Optional[Path] = SuiteArgument,
    suite_option: Optional[Path] = SuiteOption,
    output: Path = typer.Option(
        Path("benchmarks/baseline.json"), "--output", "-o", help="baseline JSON to write (the input of 'compressbench check')"
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="how the recorded entries are printed: table | md | csv | json"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated variant names (default: all)"),
    models: Optional[list[str]] = typer.Option(
        None, "--model", "-m",
        help="record this model instead of a suite (repeatable): a registered name, a saved model file, or a deployed "
        "file (.onnx, .xml, .pte, an export folder), measured in its own runtime at the size it was compiled for",
    ),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-r", help="timed rounds per variant"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads"),
    add: bool = typer.Option(False, "--add", help="add this machine's baseline to --output, keeping other machines' (replaces this machine's)"),
    force: bool = typer.Option(False, "--force", help="record even when the machine measures unhealthy (busy, throttled)"),
    runtime: Optional[str] = typer.Option(
        None, "--runtime", help=f"{' | '.join(RUNTIMES)}: where latency is measured (default: the suite's [measure] runtime)"
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help=f"{' | '.join(PRECISIONS)}: what it computes in (default: the suite's [measure] precision)"
    ),
) -> None:
    """Record ruler-relative latency samples, params and MACs of a suite's variants on this machine (the CI gate's reference).

    \b
    Example:
      compressbench baseline benchmarks/suite.toml --only teacher,quantize -o my-baseline.json
      compressbench baseline --runtime openvino --precision int8 --add
      compressbench baseline --model small-int8/ -o deployed-baseline.json
    """
    import compressbench.api as api

    require_positive(repeats=repeats, threads=threads)
    prepare_output(fmt, output)
    given = suite_path(suite, suite_option) if suite is not None or suite_option is not None else None
    run = command_form(api.baseline)(
        given, output=output, only=only, models=models, repeats=repeats, threads=threads, add=add, force=force,
        runtime=runtime, precision=precision, show_progress=True,
    )  # fmt: skip
    doc = run.document
    emit(doc, [baseline_section(run.recorded)], fmt, None)
    machine = run.recorded["machine"]["label"]
    for note in run.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"wrote {output} ({plural(len(run.suite.variants), 'entry', 'entries')} for {machine}; "
        f"{plural(len(doc['baselines']), 'machine', 'machines')} in the file); next: compressbench check --baseline {output}",
        err=True,
    )


@app.command("check")
def check_command(
    baseline: Path = typer.Option(Path("benchmarks/baseline.json"), "--baseline", help="baseline file"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="check this model (name or file) instead of every entry"),
    entry: Optional[str] = typer.Option(None, "--entry", help="baseline entry to compare --model against"),
    max_slowdown: Optional[str] = typer.Option(None, "--max-slowdown", help="allowed slowdown, e.g. 10%"),
    repeats: Optional[int] = typer.Option(None, "--repeats", "-r", help="timed rounds per measurement"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads"),
    latency: Optional[str] = typer.Option(
        None, "--latency",
        help="gate (default): a latency regression fails when the baseline is this CPU's at these threads, else advisory; "
        "strict: fails always; advisory: reported, only params/MACs decide",
    ),
    runtime: Optional[str] = typer.Option(
        None, "--runtime", help=f"{' | '.join(RUNTIMES)}: check the baseline measured there (default: the first that fits)"
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help=f"{' | '.join(PRECISIONS)}: with --runtime (default fp32)"
    ),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Re-measure against a baseline and decide: exit 0 pass, 1 regression, 3 inconclusive (2: usage error).

    \b
    Example:
      compressbench check --baseline my-baseline.json --format md -o check.md
      compressbench check --runtime openvino --precision int8

    Each entry is measured on the runtime and precision it records (entries without: torch fp32).
    """
    import compressbench.api as api

    require_positive(repeats=repeats, threads=threads)
    prepare_output(fmt, output)
    run = command_form(api.check)(
        baseline, model=model, entry=entry, max_slowdown=max_slowdown, repeats=repeats, threads=threads,
        latency=latency, runtime=runtime, precision=precision, show_progress=True,
        on_note=lambda line: typer.echo(f"note: {line}", err=True),
    )  # fmt: skip
    emit(run.record, [check_section(run.record, run.settings)], fmt, output)
    sys.exit(run.exit_code)

