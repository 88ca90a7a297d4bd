"""``compressbench evaluate``: how closely a model follows the teacher or the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, emit, prepare_output, require_positive, require_seed
from compressbench.cli.model_options import (
    CheckpointOption,
    ConfigOption,
    ModelOption,
    WeightsOption,
    variant_from_options,
)
from compressbench.errors import CompressbenchError
from compressbench.evaluation import evaluate, reference_for
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import WEIGHTS_CHOICES, load_model, untrained_note
from compressbench.report.fidelity_tables import fidelity_sections
from compressbench.report.overlays import check_overlay_dir
from compressbench.report.render import plural

OVERLAY_LIMIT = 8


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
    require_positive(frames=frames, batch=batch, threads=threads)
    require_seed(seed)
    reference = reference_for(against)
    if weights not in WEIGHTS_CHOICES:
        raise CompressbenchError(f"unknown --weights {weights!r}; choose one of: {', '.join(WEIGHTS_CHOICES)}")
    prepare_output(fmt, output)
    if overlays is not None:
        check_overlay_dir(overlays)
    # imported here so that the other commands start without the data package's image/video readers
    from compressbench.data import frames_for

    test_frames = frames_for(data, count=frames, split="test", seed=seed)
    reference_for(against, test_frames)  # ground truth needs landmarks: fail before loading any model
    loaded = variant_from_options(model, checkpoint, config, weights)
    teacher = load_model("teacher") if reference.needs_teacher else None
    with torch_threads(threads):
        record = evaluate(
            loaded.module, test_frames, against=against, teacher=teacher, batch_size=batch, model_name=loaded.name,
            data_name=data, seed=seed if data == "synthetic" else None, notes=[untrained_note(model, weights, checkpoint)],
            overlays=overlays, overlay_limit=OVERLAY_LIMIT,
        )  # fmt: skip
    if overlays is not None:
        Console(stderr=True).print(f"wrote overlays of {plural(min(OVERLAY_LIMIT, len(test_frames)), 'frame')} to {overlays} (model: red discs, {against}: cyan rings)")
    emit(record, fidelity_sections(record), fmt, output)
