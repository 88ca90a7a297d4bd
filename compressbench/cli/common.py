"""Options and output handling shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from compressbench.errors import CompressbenchError
from compressbench.report import check_format, check_writable, render, write_atomic
from compressbench.report.render import Section, print_sections


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


def emit(record: dict, sections: list[Section], fmt: str, output: Path | None) -> None:
    """Print or write ``record`` in ``fmt``; the terminal table is rich, files are plain."""
    if output is not None:
        write_atomic(output, render(record, sections, fmt))
        Console(stderr=True).print(f"wrote {output}")
        return
    console = Console()
    if fmt == "table" and console.is_terminal:
        print_sections(console, sections)  # fitted to the terminal's width
    else:
        typer.echo(render(record, sections, fmt), nl=False)  # plain text when piped
