"""``compressbench profile``: the blog's profile tables, measured here."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import (
    MODEL_SUFFIXES,
    RESULTS_SUFFIXES,
    FormatOption,
    OutputOption,
    command_form,
    emit,
    prepare_output,
)
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.errors import CompressbenchError
from compressbench.report.profile_tables import profile_sections
from compressbench.runtimes import PRECISIONS, RUNTIMES


@app.command("profile")
def profile_command(
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    batch: int = typer.Option(1, "--batch", "-b", help="batch size"),
    input_size: int = typer.Option(256, "--input-size", help="input height and width in pixels"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads (default: torch's)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed runs first"),
    repeats: int = typer.Option(50, "--repeats", "-r", help="timed runs"),
    seed: int = typer.Option(0, "--seed", help="seed of the input frames"),
    depth: Optional[int] = typer.Option(None, "--depth", help="show the module tree to this depth"),
    peaks: bool = typer.Option(True, "--peaks/--no-peaks", help="compare each layer with this machine's measured peaks (measured once, ~2 s, then cached)"),
    roofline: Optional[Path] = typer.Option(None, "--roofline", help="also write a roofline plot (PNG) of the layers"),
    runtime: str = typer.Option("torch", "--runtime", help=f"{' | '.join(RUNTIMES)}: where the model runs"),
    precision: str = typer.Option("fp32", "--precision", help=f"{' | '.join(PRECISIONS)}: the precision it runs in"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Per-module, per-block and per-layer latency, parameters and MACs (the blog's per-layer tables, measured here).

    With --runtime onnxruntime/openvino the times are that runtime's end-to-end latency and its own
    per-op profiler's times mapped onto the same modules and blocks.

    \b
    Example:
      compressbench profile --model teacher --threads 2 --repeats 50
      compressbench profile --model teacher --runtime openvino --precision bf16
    """
    import compressbench.api as api

    prepare_output(fmt, output)
    if roofline is not None:
        from compressbench.report import check_writable

        if roofline.suffix.lower() in (*RESULTS_SUFFIXES, *MODEL_SUFFIXES):
            raise CompressbenchError(f"--roofline {roofline} is a PNG plot; give a .png file (results go to --output)")
        check_writable(roofline)
    record = command_form(api.profile)(
        model, batch=batch, input_size=input_size, threads=threads, warmup=warmup, repeats=repeats, seed=seed,
        depth=depth if depth is not None else 2, peaks=peaks, runtime=runtime, precision=precision,
        checkpoint=checkpoint, config=config, weights=weights, show_progress=True,
    )  # fmt: skip
    if roofline is not None:
        from compressbench.report.plots import roofline_plot

        written = roofline_plot(record.layers, record.efficiency["peaks"], roofline, title=record.model)
        typer.echo(f"wrote {written}", err=True)  # plain: a long path must not be wrapped or read as markup
    doc = record.to_json()
    emit(doc, profile_sections(doc, show_tree=depth is not None), fmt, output)
