"""Render sections (a title, a DataFrame, notes) as a terminal table, plain text, Markdown, CSV;
records as JSON.

Cells are formatted per column, not per value: a column whose values are all numbers is
right-aligned with one precision for the whole column (integers with thousands separators,
fractions with the same number of decimals, tiny values in scientific notation); text is
left-aligned. The terminal table fits the console: columns that do not fit move into a
continuation table that repeats the first (name) column, so names are never cut.
"""

from __future__ import annotations

import io
import math
import numbers
import re
from dataclasses import dataclass, field

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from tabulate import tabulate

from compressbench.errors import CompressbenchError
from compressbench.files import render_json  # noqa: F401  (records as JSON: the bottom helper, re-exported)

FORMATS = ("table", "md", "csv", "json")
MISSING = "-"
SIGNIFICANT = 4  # digits shown of a column's largest value
MAX_DECIMALS = 3
WRAPPED_TEXT_WIDTH = 40  # a text column (not the first) wraps within this many characters
MIN_WRAPPED_WIDTH = 20  # ... or fewer, down to this, when that lets it stay in the same table
UNLIMITED = 100_000
SCIENTIFIC_BELOW = 0.01  # a column whose largest value is below this is shown as 1.23e-05
UNITS = {"ms", "s", "mb", "px", "%", "pct"}  # columns ending in one of these share their decimals
# numbers that arrive already formatted as text ("+3.4%", "1.5x", "12 ms") are still numbers to the eye
_NUMBER_TEXT = re.compile(r"^[+-]?(\d{1,3}(,\d{3})*|\d+)?(\.\d+)?(e[+-]?\d+)?\s?(%|x|ms|s|px|MB)?$")


@dataclass
class Section:
    """One table of a report: its title, its rows, and lines of notes beneath it."""

    title: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class Column:
    """One column, formatted: its header, its cells as text, and whether it holds numbers."""

    header: str
    cells: list[str]
    numeric: bool
    wrap_width: int = WRAPPED_TEXT_WIDTH  # for text: the width it wraps within

def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise CompressbenchError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    """``1 thread``, ``2 threads``, ``1 entry``/``3 entries`` (give the plural when not word+s)."""
    return f"{count} {word if count == 1 else (plural_word or word + 's')}"


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts, arrays
        return False


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integral(value) -> bool:
    return float(value).is_integer() and abs(value) < 1e15


def format_number(value) -> str:
    """One number on its own (not in a column): integers with separators, fractions to 4 digits."""
    if not math.isfinite(value):
        return str(value)
    if _integral(value):
        return f"{int(value):,}"
    if abs(value) < SCIENTIFIC_BELOW:
        return f"{value:.2e}"
    return f"{value:,.{_decimals(abs(value))}f}"


def _decimals(largest: float) -> int:
    return min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest))))


def format_value(value) -> str:
    """A cell of a mixed column: numbers as :func:`format_number`, lists joined, dicts as key value pairs."""
    if _missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_number(value):
        return format_number(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "(none)"
    return str(value)


def _fixed_point_largest(values: list) -> float | None:
    """The largest magnitude of a column shown with fixed decimals (None: integers or scientific)."""
    finite = [float(v) for v in values if not _missing(v) and math.isfinite(float(v))]
    if not finite or all(_integral(v) for v in finite):
        return None
    largest = max(abs(v) for v in finite)
    return largest if largest >= SCIENTIFIC_BELOW else None


def _number_cells(values: list, decimals: int | None = None) -> list[str]:
    present = [float(v) for v in values if not _missing(v)]
    finite = [v for v in present if math.isfinite(v)]
    if all(_integral(v) for v in finite):
        fmt = lambda v: f"{int(v):,}"  # noqa: E731
    else:
        largest = max(abs(v) for v in finite)
        if largest < SCIENTIFIC_BELOW:
            fmt = lambda v: "0" if v == 0 else f"{v:.2e}"  # noqa: E731
        else:
            decimals = _decimals(largest) if decimals is None else decimals
            fmt = lambda v: f"{v:,.{decimals}f}"  # noqa: E731
    return [MISSING if _missing(v) else (fmt(float(v)) if math.isfinite(float(v)) else str(float(v))) for v in values]


def unit_of(header) -> str:
    """The unit a column header ends with ('latency_ms', 'p90_ms', 'teacher ms' -> 'ms'); '' if none."""
    tail = re.split(r"[_\s]", str(header).strip())[-1].lower()
    return tail if tail in UNITS else ""


def format_column(header, values: list, decimals: int | None = None) -> Column:
    """Cells of one column with one precision for all of its numbers (``decimals`` overrides the
    column's own choice for fixed-point numbers)."""
    present = [v for v in values if not _missing(v)]
    if present and all(_is_number(v) for v in present):
        return Column(str(header), _number_cells(values, decimals), numeric=True)
    cells = [format_value(v) for v in values]
    shown = [c for c in cells if c != MISSING]
    numeric = bool(shown) and all(_NUMBER_TEXT.match(c) for c in shown)
    return Column(str(header), cells, numeric=numeric)


def columns_of(frame: pd.DataFrame) -> list[Column]:
    """Formatted columns; numeric columns in the same unit (all the ``_ms`` ones, say) share one
    number of decimals, set by the largest value among them, so 9.015 never sits beside 10.95."""
    if not len(frame):
        return [Column(str(name), [], False) for name in frame.columns]
    values = {name: list(frame[name].astype(object)) for name in frame.columns}
    largest_per_unit: dict[str, float] = {}
    for name, column in values.items():
        present = [v for v in column if not _missing(v)]
        unit = unit_of(name)
        largest = _fixed_point_largest(column) if unit and present and all(_is_number(v) for v in present) else None
        if largest is not None:
            largest_per_unit[unit] = max(largest, largest_per_unit.get(unit, 0.0))
    return [
        format_column(name, column, _decimals(largest_per_unit[unit_of(name)]) if unit_of(name) in largest_per_unit else None)
        for name, column in values.items()
    ]


def _rows(columns: list[Column]) -> list[list[str]]:
    count = len(columns[0].cells) if columns else 0
    return [[column.cells[i] for column in columns] for i in range(count)]


def render_markdown(sections: list[Section], heading_level: int = 3) -> str:
    parts = []
    for section in sections:
        parts.append(f"{'#' * heading_level} {section.title}\n")
        columns = columns_of(section.frame)
        parts.append(
            tabulate(
                _rows(columns),
                headers=[c.header for c in columns],
                tablefmt="pipe",
                disable_numparse=True,
                colalign=["right" if c.numeric else "left" for c in columns],
            )
        )
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


def render_plain(sections: list[Section]) -> str:
    """Plain text for pipes and files: no box, no padding to a terminal width, no trailing spaces."""
    parts = []
    for section in sections:
        columns = columns_of(section.frame)
        table = tabulate(
            _rows(columns),
            headers=[c.header for c in columns],
            tablefmt="simple",
            disable_numparse=True,
            colalign=["right" if c.numeric else "left" for c in columns],
        )
        parts.append(section.title)
        parts.append("\n".join(line.rstrip() for line in table.splitlines()))
        parts.extend(section.notes)
        parts.append("")
    return "\n".join(parts)


def _rich_table(title: str, columns: list[Column]) -> Table:
    table = Table(
        title=Text(title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
        pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    for i, column in enumerate(columns):
        wraps = i > 0 and not column.numeric  # names (first column) and numbers are never cut
        longest_word = max((len(word) for cell in column.cells for word in cell.split()), default=0)
        table.add_column(
            Text(column.header), justify="right" if column.numeric else "left", no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            # long text may wrap down to this; the space it needs decides which columns share a table
            max_width=max(column.wrap_width, longest_word, len(column.header)) if wraps else None,
        )  # fmt: skip
    for row in _rows(columns):
        table.add_row(*[Text(cell) for cell in row])
    return table


def _natural_width(console: Console, table: Table) -> int:
    """The width ``table`` takes unsqueezed (console.measure alone is capped at the console's width)."""
    return console.measure(table, options=console.options.update_width(UNLIMITED)).maximum


def _narrowed(title: str, group: list[Column], column: Column, console: Console) -> Column | None:
    """``column`` wrapped narrowly enough to join ``group`` within the console, if it is text that
    can wrap to at least MIN_WRAPPED_WIDTH characters (and no word is cut); else None."""
    if column.numeric:
        return None
    longest_word = max((len(word) for cell in column.cells for word in cell.split()), default=0)
    spare = console.width - _natural_width(console, _rich_table(title, group)) - 2  # 2: the column gap
    if spare < max(MIN_WRAPPED_WIDTH, longest_word, len(column.header)):
        return None
    narrowed = Column(column.header, column.cells, column.numeric, wrap_width=min(column.wrap_width, spare))
    return narrowed if _natural_width(console, _rich_table(title, [*group, narrowed])) <= console.width else None


def _chunks(title: str, columns: list[Column], console: Console) -> list[list[Column]]:
    """Split columns into groups that each fit the console, every group led by the name column."""
    if len(columns) <= 1:
        return [columns]
    key, rest = columns[0], columns[1:]
    groups: list[list[Column]] = [[key]]
    for column in rest:
        trial = groups[-1] + [column]
        if len(groups[-1]) > 1 and _natural_width(console, _rich_table(title, trial)) > console.width:
            narrower = _narrowed(title, groups[-1], column, console)
            if narrower is not None:
                groups[-1] = groups[-1] + [narrower]
            else:
                groups.append([key, column])
        else:
            groups[-1] = trial
    return groups


def _widened(title: str, group: list[Column], console: Console) -> list[Column]:
    """``group`` with its wrapping text columns given the console width the other columns leave,
    so long text wraps only where it has to."""
    wrapping = [i for i, column in enumerate(group) if i > 0 and not column.numeric]
    if not wrapping:
        return group
    spare = console.width - _natural_width(console, _rich_table(title, group))
    if spare <= 0:
        return group
    extra = spare // len(wrapping)
    return [
        Column(c.header, c.cells, c.numeric, c.wrap_width + extra) if i in wrapping else c for i, c in enumerate(group)
    ]


def print_sections(console: Console, sections: list[Section]) -> None:
    """Print sections as terminal tables that fit ``console``'s width, notes wrapped beneath."""
    for number, section in enumerate(sections):
        if number:
            console.print()
        columns = columns_of(section.frame)
        groups = _chunks(section.title, columns, console)
        for index, group in enumerate(groups):
            title = section.title if index == 0 else f"{section.title} (continued)"
            if index:
                console.print()
            console.print(_rich_table(title, _widened(title, group, console)))
        if section.notes:
            console.print()
        for note in section.notes:
            console.print(Text(note), overflow="fold")


def render_terminal(sections: list[Section], width: int) -> str:
    """What :func:`print_sections` shows on a terminal ``width`` columns wide, without colour."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None, legacy_windows=False)
    print_sections(console, sections)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render(record: dict, sections: list[Section], fmt: str) -> str:
    """Text for ``fmt`` (json uses the record, the others the sections; ``table`` is plain text)."""
    check_format(fmt)
    if fmt == "json":
        return render_json(record)
    if fmt == "md":
        return render_markdown(sections)
    if fmt == "csv":
        return render_csv(sections)
    return render_plain(sections)
