"""Options and output handling shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from compressbench.errors import CompressbenchError
from compressbench.report import check_format, check_writable, render, write_atomic
from compressbench.report.render import Section, rich_tables

MIN_TABLE_WIDTH = 140


def wide_console() -> Console:
    """A console that does not squeeze wide tables into 80 columns when piped."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=MIN_TABLE_WIDTH)
    return console


FormatOption = typer.Option("table", "--format", "-f", help="table | md | csv | json")
OutputOption = typer.Option(None, "--output", "-o", help="write the result to this file (atomically)")


def require_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def require_non_negative(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 0:
            raise CompressbenchError(f"--{name.replace('_', '-')} must be zero or more, got {value}")


def prepare_output(fmt: str, output: Path | None) -> None:
    """Validate format and destination before any work starts."""
    check_format(fmt)
    if output is not None:
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
    if fmt == "table":
        console = wide_console()
        for table in rich_tables(sections):
            console.print(table)
    else:
        typer.echo(render(record, sections, fmt), nl=False)
