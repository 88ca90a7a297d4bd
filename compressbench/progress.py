"""Rich progress bars on stderr (stdout stays clean for JSON), shared by every long task."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_STDERR = Console(stderr=True)


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(steps=1, **fields)``; ``fields`` update the status text (e.g. loss=0.1)."""
    if not enabled or not _STDERR.is_terminal:  # a live bar in a log file is only noise
        yield lambda *args, **kwargs: None
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
            status = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task, advance=steps, **({"status": status} if fields else {}))

        yield advance
