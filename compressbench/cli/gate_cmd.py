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
    emit,
    prepare_output,
    require_positive,
    suite_path,
)
from compressbench.errors import CompressbenchError
from compressbench.profiling.health import check_health
from compressbench.provenance import Variant, load_model, model_label, provenance_of
from compressbench.regress import parse_fraction, read_settings
from compressbench.regress.baseline import (
    check_entry_runtimes,
    pick_entry,
    read_baseline,
    read_baseline_file,
    record_baseline,
    run_check,
)
from compressbench.report import render_json, write_atomic
from compressbench.report.gate_tables import baseline_section, check_section
from compressbench.report.render import plural
from compressbench.runtimes import PRECISIONS, RUNTIMES, check_runtime
from compressbench.suite import MEASURE_DEFAULTS, VariantSpec, build_variant, read_suite


@app.command("baseline")
def baseline_command(
    suite: Optional[Path] = SuiteArgument,
    suite_option: Optional[Path] = SuiteOption,
    output: Path = typer.Option(
        Path("benchmarks/baseline.json"), "--output", "-o", help="baseline JSON to write (the input of 'compressbench check')"
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="how the recorded entries are printed: table | md | csv | json"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated variant names (default: all)"),
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
    """
    require_positive(repeats=repeats, threads=threads)
    prepare_output(fmt, output)
    existing = read_baseline_file(output) if add and output.exists() else None  # a broken file fails before any work
    parsed = read_suite(suite_path(suite, suite_option))
    if only:
        parsed.variants = [parsed.get(name.strip()) for name in only.split(",") if name.strip()]
    runtime = runtime or parsed.measure["runtime"]
    precision = precision or parsed.measure["precision"]
    check_runtime(runtime, precision)
    settings = read_settings(repeats=repeats, threads=threads)
    doc, notes = record_baseline(parsed, settings, runtime=runtime, precision=precision, force=force, add_to=existing, add=add)
    write_atomic(output, render_json(doc))
    emit(doc, [baseline_section(doc["baselines"][-1])], fmt, None)
    machine = doc["baselines"][-1]["machine"]["label"]
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"wrote {output} ({plural(len(parsed.variants), 'entry', 'entries')} for {machine}; "
        f"{plural(len(doc['baselines']), 'machine', 'machines')} in the file); next: compressbench check --baseline {output}",
        err=True,
    )


def build_measure(baseline: dict, settings) -> dict:
    """How the baseline's variants were built (its suite's [measure], recorded since baseline format
    2; the suite defaults before), on synthetic frames at the check's size and seed."""
    recorded = baseline.get("measure") or {}
    return {**MEASURE_DEFAULTS, **recorded, "data": "synthetic", "input_size": settings.input_size, "seed": settings.seed}


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
    require_positive(repeats=repeats, threads=threads)
    prepare_output(fmt, output)
    slowdown = parse_fraction(max_slowdown) if max_slowdown is not None else None
    settings = read_settings(max_slowdown=slowdown, repeats=repeats, threads=threads, latency=latency)
    wanted = None
    if runtime is not None or precision is not None:
        wanted = (runtime or "torch", precision or "fp32")
        check_runtime(*wanted)
    doc = read_baseline(baseline, threads=settings.threads, runtime=wanted)
    if model is None and not any(e.get("spec") for e in doc["entries"]):
        raise CompressbenchError(f"nothing to check: no entry of {baseline} records the spec it was built from; "
                                 "record the baseline again with 'compressbench baseline', or name a model with --model")
    check_entry_runtimes(doc["entries"])  # a runtime not installed here: one line, before building anything
    health = check_health(settings.threads)
    if model is not None:
        module = load_model(model)
        chosen = pick_entry(doc, module, model_label(model), entry)
        modules = {chosen["name"]: Variant(chosen["name"], module, provenance_of(model, module))}
    else:
        modules = {e["name"]: build_variant(VariantSpec(**e["spec"]), build_measure(doc, settings))
                   for e in doc["entries"] if e.get("spec")}  # fmt: skip
        unbuilt = [e["name"] for e in doc["entries"] if not e.get("spec")]
        if unbuilt:
            typer.echo(f"note: not checked (no spec to rebuild them from): {', '.join(unbuilt)}", err=True)
    top = headline_text(doc, settings)  # after every input is known good: an error stays the only line
    if top:
        typer.echo(f"note: {top}", err=True)
    result = run_check(doc, settings, modules, health=health)
    emit(result, [check_section(result, settings)], fmt, output)
    sys.exit(result["exit_code"])


def headline_text(doc: dict, settings) -> str | None:
    """The line printed first when the baseline is another CPU's or another thread count's."""
    from compressbench.regress.baseline import headline

    return headline(doc.get("match"), settings.latency)
