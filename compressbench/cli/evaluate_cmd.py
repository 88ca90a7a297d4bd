"""``compressbench evaluate``: how closely a model follows the teacher or the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, emit, prepare_output, require_positive
from compressbench.cli.model_options import (
    CheckpointOption,
    ConfigOption,
    ModelOption,
    WeightsOption,
    model_from_options,
)
from compressbench.errors import CompressbenchError
from compressbench.evaluation import evaluate, predict, reference_for, reference_points
from compressbench.models import list_models
from compressbench.models.default_weights import has_default_weights
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import WEIGHTS_CHOICES, load_model, model_label
from compressbench.report.fidelity_tables import fidelity_sections
from compressbench.report.overlays import check_overlay_dir, write_overlays
from compressbench.report.render import plural

OVERLAY_LIMIT = 8


def untrained_note(model: str, weights: str) -> str | None:
    """A note for a registered model evaluated without trained weights (its AKD is that of noise)."""
    registered = {entry.name for entry in list_models()}
    if model not in registered:
        return None  # a saved file: trained or not, it is what the user made
    if weights == "random" or not has_default_weights(model):
        return (
            f"{model} runs with random weights (it has no trained weights{' loaded' if weights == 'random' else ''}): "
            f"this AKD measures an untrained network; train it first, e.g. compressbench distill --student {model} "
            f"--out {model}.pt, then evaluate --model {model}.pt"
        )
    return None


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
    module = model_from_options(model, checkpoint, config, weights)
    teacher = load_model("teacher") if reference.needs_teacher else None
    with torch_threads(threads):
        record = evaluate(
            module, test_frames, against=against, teacher=teacher, batch_size=batch, model_name=model_label(model), data_name=data
        )
    record["seed"] = seed if data == "synthetic" else None
    if untrained_note(model, weights):
        record["notes"] = [*(record.get("notes") or []), untrained_note(model, weights)]
    record["overlays"] = None
    if overlays is not None:
        shown = test_frames.slice(0, OVERLAY_LIMIT)
        points = predict(module, shown, batch_size=batch)["value"]
        written = write_overlays(
            overlays, shown, points, reference_points(against, shown, teacher, batch), OVERLAY_LIMIT,
            model_name=model_label(model), reference_name=against,
        )
        record["overlays"] = str(overlays)
        Console(stderr=True).print(f"wrote {plural(len(written), 'overlay')} to {overlays} (model: red discs, {against}: cyan rings)")
    emit(record, fidelity_sections(record), fmt, output)
