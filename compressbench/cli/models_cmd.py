"""``compressbench models``: the registered models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, emit, prepare_output
from compressbench.models import list_models
from compressbench.models.default_weights import has_default_weights
from compressbench.profiling import count_params
from compressbench.report.render import Section


@app.command("models")
def models_command(fmt: str = FormatOption, output: Optional[Path] = OutputOption) -> None:
    """List the registered models with their parameter counts and whether they have trained weights.

    \b
    Example:
      compressbench models --format md
    """
    prepare_output(fmt, output)
    rows = [
        {
            "name": entry.name,
            "params": count_params(entry.factory(entry.default_config)),
            "weights": "trained" if has_default_weights(entry.name) else "untrained",
            "description": entry.description,
        }
        for entry in list_models()
    ]
    notes = [
        "weights: 'trained' models ship trained weights; 'untrained' ones start from a random initialisation, so their "
        "latency and size are real but their AKD means nothing until they are trained: "
        "compressbench distill --student NAME --out NAME.pt, then use --model NAME.pt"
    ]
    emit({"models": rows}, [Section("Registered models", pd.DataFrame(rows), notes)], fmt, output)
