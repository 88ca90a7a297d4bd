"""``compressbench evaluate``: how closely a model follows the teacher or the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, command_form, emit, prepare_output
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.report.fidelity_tables import fidelity_sections
from compressbench.report.render import plural

OVERLAY_LIMIT = 8  # compressbench.api.OVERLAY_LIMIT (the api is imported only when a command runs)


@app.command("evaluate")
def evaluate_command(
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    data: str = typer.Option("synthetic", "--data", "-d", help="'synthetic' or a folder of images / a video file"),
    against: str = typer.Option("teacher", "--against", help="teacher | ground-truth"),
    frames: int = typer.Option(32, "--frames", "-n", help="number of frames to evaluate on"),
    seed: int = typer.Option(0, "--seed", help="seed of the synthetic test frames"),
    batch: int = typer.Option(16, "--batch", "-b", help="frames per forward pass"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads (default: torch's)"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
    overlays: Optional[Path] = typer.Option(
        None, "--overlays", help=f"write PNGs of the first {OVERLAY_LIMIT} frames with keypoints drawn to this folder"
    ),
) -> None:
    """AKD (px), jacobian error and heatmap similarity of a model on held-out test frames.

    \b
    Example:
      compressbench evaluate --model small.pt --frames 64
      compressbench evaluate --model teacher --against ground-truth --overlays overlays/
    """
    import compressbench.api as api

    prepare_output(fmt, output)
    record = command_form(api.evaluate)(
        model, against=against, data=data, frames=frames, seed=seed, batch=batch, threads=threads, overlays=overlays,
        checkpoint=checkpoint, config=config, weights=weights, show_progress=True,
    )  # fmt: skip
    if overlays is not None:
        Console(stderr=True).print(f"wrote overlays of {plural(min(OVERLAY_LIMIT, record['frames']), 'frame')} to {overlays} (model: red discs, {against}: cyan rings)")
    emit(record, fidelity_sections(record), fmt, output)
