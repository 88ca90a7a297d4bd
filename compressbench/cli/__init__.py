"""The ``compressbench`` command line: a thin Typer layer over the library."""

from __future__ import annotations

# The command modules import some of the library inside their command functions, on purpose: what
# only one command needs (bench, the Markdown report and its matplotlib plots, the training tables)
# stays unloaded for `compressbench --help` and every other command. The library itself imports at
# its modules' tops, except optional dependencies and the few imports that would close a cycle.
from compressbench.cli import bench_cmd as _bench_cmd  # noqa: F401
from compressbench.cli import compress_cmd as _compress_cmd  # noqa: F401
from compressbench.cli import distill_cmd as _distill_cmd  # noqa: F401
from compressbench.cli import evaluate_cmd as _evaluate_cmd  # noqa: F401
from compressbench.cli import export_cmd as _export_cmd  # noqa: F401
from compressbench.cli import gate_cmd as _gate_cmd  # noqa: F401
from compressbench.cli import machine_cmd as _machine_cmd  # noqa: F401
from compressbench.cli import models_cmd as _models_cmd  # noqa: F401  (registers commands)
from compressbench.cli import profile_cmd as _profile_cmd  # noqa: F401
from compressbench.cli import search_cmd as _search_cmd  # noqa: F401
from compressbench.cli import sensitivity_cmd as _sensitivity_cmd  # noqa: F401
from compressbench.cli import teacher_cmd as _teacher_cmd  # noqa: F401
from compressbench.cli.app import app, main

__all__ = ["app", "main"]
