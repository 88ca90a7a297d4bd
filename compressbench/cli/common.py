"""Options and output handling shared by commands."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.console import Console

from compressbench.errors import CompressbenchError
from compressbench.files import MODEL_SUFFIXES, RESULTS_SUFFIXES, check_model_path, check_results_path  # noqa: F401
from compressbench.report import check_format, check_writable, render, write_atomic
from compressbench.report.render import Section, print_sections

FormatOption = typer.Option("table", "--format", "-f", help="table | md | csv | json")
OutputOption = typer.Option(None, "--output", "-o", help="write the results (tables or JSON, see --format) to this file")



DEFAULT_SUITE = Path("benchmarks/suite.toml")
SuiteArgument = typer.Argument(None, help=f"suite file (default {DEFAULT_SUITE}); or give it with --suite", show_default=False)
SuiteOption = typer.Option(None, "--suite", help="suite file (the same as the positional argument)")


def suite_path(positional: Path | None, option: Path | None) -> Path:
    """The suite given positionally or with --suite (bench and baseline take both)."""
    if positional is not None and option is not None and positional != option:
        raise CompressbenchError(f"two suites given ({positional} and --suite {option}); give one")
    return positional or option or DEFAULT_SUITE


def command_form(function):
    """A :mod:`compressbench.api` function as a command calls it: its errors name the ``--options``
    (the API's wrapper renames them ``option=`` for Python callers)."""
    return inspect.unwrap(function)


def require_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def require_non_negative(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 0:
            raise CompressbenchError(f"--{name.replace('_', '-')} must be zero or more, got {value}")


SEED_MAX = 2**63 - 1  # what torch's and numpy's generators both take


def require_seed(seed: int) -> None:
    if not 0 <= seed <= SEED_MAX:
        raise CompressbenchError(f"--seed must be an integer from 0 to {SEED_MAX} (2**63 - 1), got {seed}")


def prepare_output(fmt: str, output: Path | None) -> None:
    """Validate format and destination before any work starts."""
    check_format(fmt)
    if output is not None:
        check_results_path(output)
        check_writable(output)


def health_note(record: dict) -> str | None:
    """One line when the record's measurement health has warnings (busy machine, time floor, scaling)."""
    warnings = (record.get("health") or {}).get("warnings")
    return "measurement health: " + "; ".join(warnings) if warnings else None


def emit(record: dict, sections: list[Section], fmt: str, output: Path | None) -> None:
    """Print or write ``record`` in ``fmt``; the terminal table is rich, files are plain. A health
    warning goes first, as one ``note:`` line on stderr."""
    note = health_note(record)
    if note:
        typer.echo(f"note: {note}", err=True)
    if output is not None:
        write_atomic(output, render(record, sections, fmt))
        Console(stderr=True).print(f"wrote {output}")
        return
    console = Console()
    if fmt == "table" and console.is_terminal:
        print_sections(console, sections)  # fitted to the terminal's width
    else:
        typer.echo(render(record, sections, fmt), nl=False)  # plain text when piped
