"""The README's option table and the CLI agree: every shared option (or one with a short flag) has
a row, each row names exactly the commands that have the option, with the same short flag."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import typer.main

from compressbench.cli import app

README = Path(__file__).resolve().parents[2] / "docs" / "commands.md"  # the options table lives in the user guide


def cli_options() -> dict[str, dict[str, tuple[str, ...]]]:
    """option -> {command path: its short flags}."""
    try:
        from typer._click import Context
    except ImportError:  # pragma: no cover - older Typer depends on Click itself
        from click import Context
    found: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)

    def walk(group, prefix: str) -> None:
        ctx = Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if hasattr(command, "list_commands"):
                walk(command, f"{prefix}{name} ")
                continue
            for param in command.params:
                if param.param_type_name != "option" or param.hidden or param.name in ("help",):
                    continue
                longs = [o for o in param.opts if o.startswith("--")]
                found[longs[0]][prefix + name] = tuple(o for o in param.opts if not o.startswith("--"))

    walk(typer.main.get_command(app), "")
    return found


def readme_rows() -> dict[str, tuple[str, set[str]]]:
    """option -> (short flag or '', commands) from the table between the options-table markers."""
    text = README.read_text()
    table = text.split("<!-- options-table:start -->")[1].split("<!-- options-table:end -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        option, short, _, commands = cells
        rows[option.strip("`")] = (short.strip("`"), {c.strip() for c in commands.split(",")})
    return rows


def test_readme_table_matches_the_cli():
    cli, rows = cli_options(), readme_rows()
    shared = {o for o, uses in cli.items() if len(uses) > 1 or any(uses.values())}
    assert shared - set(rows) == set(), "options used by several commands (or with a short flag) missing from the README table"
    for option, (short, commands) in rows.items():
        assert option in cli, f"README lists {option}, which no command has"
        assert set(cli[option]) == commands, f"{option}: README {sorted(commands)}, CLI {sorted(cli[option])}"
        for command, shorts in cli[option].items():
            assert shorts == ((short,) if short else ()), f"{command} {option}: short flag {shorts}, README {short!r}"


def test_a_short_flag_means_one_option():
    owners = defaultdict(set)
    for option, uses in cli_options().items():
        for shorts in uses.values():
            for short in shorts:
                owners[short].add(option)
    assert {s: o for s, o in owners.items() if len(o) > 1} == {}
