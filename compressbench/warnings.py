"""Third-party warnings, collected while a command runs and summarised in one line each at the end.

PyTorch prints some warnings on every forward pass or every load (with the generated source line
under them), which buries our progress lines and looks like an error. The CLI runs each command
inside :func:`collected_warnings`; known warnings are counted and explained once ("PyTorch warned
12 times about ...; harmless because ..."), unknown ones are shown once each, on one line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from compressbench.errors import CompressbenchWarning


@dataclass(frozen=True)
class KnownWarning:
    """A warning we understand: how to recognise it, what it is about, and why it does not matter."""

    pattern: str  # regular expression searched in the warning's message
    source: str
    about: str
    harmless_because: str


KNOWN_WARNINGS = (
    KnownWarning(
        r"TypedStorage is deprecated",
        "PyTorch",
        "TypedStorage being deprecated",
        "torch's own loader uses it while reading a saved file; nothing in compressbench calls it",
    ),
    KnownWarning(
        r"quantized tensor creation functions .* are deprecated|quantize_per_tensor",
        "PyTorch",
        "int8 tensors (torch.quantize_per_tensor) being deprecated",
        "torch.load creates them while reading a saved int8 model, and they work in this torch; "
        "pt2e (quantize --backend pt2e) is the successor",
    ),
    KnownWarning(
        r"torch\.ao\.quantization is deprecated",
        "PyTorch",
        "torch.ao quantization (FX/eager) being deprecated",
        "the fx backend still works in this torch; pt2e (quantize --backend pt2e) is the successor",
    ),
    KnownWarning(
        r"All inputs of this cat operator must share the same quantization parameters",
        "PyTorch",
        "int8 concatenations whose inputs have different scales",
        "the inputs are requantized to one scale; the AKD in the table measures any loss",
    ),
)


def first_line(message: str) -> str:
    return " ".join(str(message).strip().splitlines()[0].split()) if str(message).strip() else ""


def _classify(message: str) -> KnownWarning | None:
    return next((known for known in KNOWN_WARNINGS if re.search(known.pattern, message)), None)


def summary_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """One line per kind of warning: known ones counted and explained, others shown once each."""
    known: Counter = Counter()
    other: Counter = Counter()
    ours: list[str] = []
    for item in caught:
        message = str(item.message)
        if issubclass(item.category, CompressbenchWarning):  # ours: actionable, each on its own line
            ours.append(f"warning: {' '.join(message.split())}")
            continue
        kind = _classify(message)
        if kind is not None:
            known[kind] += 1
        elif not issubclass(item.category, (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)):
            # Python hides deprecation notices and unclosed-resource warnings by default; so do we
            other[(item.category.__name__, first_line(message))] += 1
    lines = ours
    for kind, count in known.items():
        times = "once" if count == 1 else f"{count} times"
        lines.append(f"note: {kind.source} warned {times} about {kind.about}; harmless because {kind.harmless_because}")
    for (category, text), count in other.items():
        times = "" if count == 1 else f" ({count} times)"
        lines.append(f"note: {category}: {text}{times}")
    return lines


@contextmanager
def collected_warnings(report: Callable[[str], None]) -> Iterator[list]:
    """Collect every warning raised inside; on leaving (also on error) pass one summary line per
    kind to ``report``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # count every occurrence, not only the first per place
        try:
            yield caught
        finally:
            for line in summary_lines(caught):
                report(line)


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the block: native libraries (torch's profiler, ExecuTorch's CPU
    probing) log there directly, where Python's warning filters cannot reach."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


# Log lines a third-party import prints that the user can do nothing about: (logger, message pattern).
IMPORT_NOISE = (
    # torchao's kernels built for CUDA (and for another Python): this CPU build cannot load them and
    # torchao goes on without them; printed once per process as "Failed to load .../_C_mxfp8...so"
    ("torchao", r"^Failed to load \S*torchao\S*\.so\b"),
    # torchao registers an Enum as a pytree constant, which torch 2.13 deprecates (logged as "W... _pytree.py")
    ("torch.utils._pytree", r"is an Enum subclass and is now natively supported"),
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


@contextmanager
def quiet_log_lines(noise: tuple[tuple[str, str], ...] = IMPORT_NOISE) -> Iterator[None]:
    """Drop, for the block, only the log records of each (logger, pattern) in ``noise`` whose message
    matches: every other line of those loggers still shows."""
    added = [(logging.getLogger(name), _DropMatching(pattern)) for name, pattern in noise]
    for logger, dropper in added:
        logger.addFilter(dropper)
    try:
        yield
    finally:
        for logger, dropper in added:
            logger.removeFilter(dropper)


def import_quietly(module: str):
    """``importlib.import_module(module)`` without the :data:`IMPORT_NOISE` lines its import logs."""
    import importlib

    with quiet_log_lines():
        return importlib.import_module(module)
