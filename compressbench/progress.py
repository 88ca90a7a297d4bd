"""Rich progress bars on stderr (stdout stays clean for JSON), shared by every long task."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_STDERR = Console(stderr=True)


def _format(fields: dict) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def _plain_lines(description: str, total: int) -> Callable[..., None]:
    state = {"done": 0, "tenth": 1, "start": time.perf_counter(), "status": ""}

    def advance(steps: int = 1, **fields) -> None:
        state["done"] += steps
        if fields:
            state["status"] = _format(fields)
        if state["done"] * 10 >= state["tenth"] * total or state["done"] == total:
            elapsed = time.perf_counter() - state["start"]
            print(f"{description}: {state['done']}/{total} ({elapsed:.0f} s) {state['status']}".rstrip(), file=sys.stderr, flush=True)
            while state["tenth"] * total <= state["done"] * 10:
                state["tenth"] += 1

    return advance


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(steps=1, **fields)``; ``fields`` update the status text (e.g. loss=0.1)."""
    if not enabled:
        yield lambda *args, **kwargs: None
        return
    if not _STDERR.is_terminal:  # a live bar in a log file is noise: a plain line every 10% instead
        yield _plain_lines(description, total)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=_STDERR, transient=True) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(steps: int = 1, **fields) -> None:
            progress.update(task, advance=steps, **({"status": _format(fields)} if fields else {}))

        yield advance
