"""Render sections (a title, a DataFrame, notes) as a rich table, Markdown, CSV; records as JSON."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field

import pandas as pd
from rich.console import Console
from rich.table import Table
from tabulate import tabulate

from compressbench.errors import CompressbenchError

FORMATS = ("table", "md", "csv", "json")


@dataclass
class Section:
    """One table of a report: its title, its rows, and lines of notes beneath it."""

    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise CompressbenchError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _to_jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def render_json(record: dict) -> str:
    return json.dumps(_to_jsonable(record), indent=2) + "\n"


def render_markdown(sections: list[Section], heading_level: int = 3) -> str:
    parts = []
    for section in sections:
        parts.append(f"{'#' * heading_level} {section.title}\n")
        frame = section.frame
        rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
        parts.append(tabulate(rows, headers=list(frame.columns), tablefmt="pipe", disable_numparse=True))
        parts.append("")
        parts.extend(f"- {note}" for note in section.notes)
        if section.notes:
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_csv(sections: list[Section]) -> str:
    """One tidy CSV: a leading ``table`` column names the section each row belongs to."""
    frames = [section.frame.assign(table=section.title) for section in sections]
    combined = pd.concat(frames, ignore_index=True, sort=False)
    combined = combined[["table"] + [c for c in combined.columns if c != "table"]]
    return combined.to_csv(index=False)


def rich_tables(sections: list[Section]) -> list:
    out = []
    for section in sections:
        table = Table(title=section.title, title_justify="left", show_lines=False)
        for i, column in enumerate(section.frame.columns):
            table.add_column(str(column), justify="left" if i == 0 else "right")
        for row in section.frame.itertuples(index=False):
            table.add_row(*[_cell(v) for v in row])
        caption = "\n".join(section.notes)
        if caption:
            table.caption = caption
            table.caption_justify = "left"
        out.append(table)
    return out


def render_text(sections: list[Section], width: int = 140) -> str:
    """The terminal rendering as plain text (for ``--format table --output FILE``)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    for table in rich_tables(sections):
        console.print(table)
    return buffer.getvalue()


def render(record: dict, sections: list[Section], fmt: str) -> str:
    """Text for ``fmt`` (json uses the record, the others the sections)."""
    check_format(fmt)
    if fmt == "json":
        return render_json(record)
    if fmt == "md":
        return render_markdown(sections)
    if fmt == "csv":
        return render_csv(sections)
    return render_text(sections)
