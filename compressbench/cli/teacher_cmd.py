"""``compressbench teacher``: train the teacher and export trained weights."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from compressbench.cli.app import WorkflowGroup, app
from compressbench.cli.common import (
    FormatOption,
    check_model_path,
    emit,
    prepare_output,
    require_positive,
    require_seed,
)
from compressbench.cli.model_options import ConfigOption
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, read_fomm_config
from compressbench.profiling import torch_threads
from compressbench.report import check_writable
from compressbench.report.render import Section
from compressbench.training.distributed import is_main_process, resolve_device
from compressbench.training.teacher import TeacherTrainOptions, train_teacher
from compressbench.training.teacher_losses import TeacherLossWeights

teacher_app = typer.Typer(
    cls=WorkflowGroup, help="Train the teacher (FOMM's KPDetector) and export its weights.", no_args_is_help=True
)
app.add_typer(teacher_app, name="teacher")


def _detector_config(config: Optional[Path], **overrides: Optional[int]) -> DetectorConfig:
    base = read_fomm_config(config) if config is not None else DetectorConfig()
    return replace(base, **{name: value for name, value in overrides.items() if value is not None})


def _command_line(options: TeacherTrainOptions, config: Optional[Path], overrides: dict) -> str:
    """The command that reproduces this run (recorded in the checkpoint and the weights' JSON)."""
    args = ["compressbench", "teacher", "train", "--steps", options.steps, "--batch", options.batch,
            "--lr", options.lr, "--seed", options.seed, "--data", options.data, "--device", options.device,
            "--val-frames", options.val_frames, "--val-every", options.val_every, "--input-size", options.size,
            "--lr-schedule", options.lr_schedule,
            "--equivariance-value", options.weights.equivariance_value,
            "--equivariance-jacobian", options.weights.equivariance_jacobian, "--out", options.out]
    if options.patience is not None:
        args += ["--patience", options.patience]
    if config is not None:
        args += ["--config", config]
    for name, value in overrides.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", value]
    # no --resume or --checkpoint-every: they change no result (a resumed run ends bit-identical
    # to this command run uninterrupted; the checkpoint's meta lists the steps it was resumed at)
    return shlex.join(str(arg) for arg in args)


@teacher_app.command("train")
def train_command(
    steps: int = typer.Option(800, "--steps", help="total optimisation steps (a resumed run counts from its checkpoint)"),
    batch: int = typer.Option(16, "--batch", "-b", help="frames per step"),
    lr: float = typer.Option(5e-4, "--lr", help="Adam learning rate"),
    seed: int = typer.Option(0, "--seed", help="seed of the weights, frames and warps"),
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic (labelled faces) | a folder of images | a video file"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    out: Path = typer.Option(..., "--out", help="checkpoint to write (FOMM layout: best weights under kp_detector)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue from this checkpoint"),
    val_frames: int = typer.Option(64, "--val-frames", help="held-out frames scored at every validation"),
    size: int = typer.Option(256, "--input-size", help="frame side in pixels (synthetic frames are drawn, user frames resized)"),
    val_every: int = typer.Option(100, "--val-every", help="validate (and write the checkpoint) every N steps"),
    checkpoint_every: Optional[int] = typer.Option(
        None, "--checkpoint-every", help="also write the checkpoint every N steps (for long runs; results unchanged)"
    ),
    patience: Optional[int] = typer.Option(None, "--patience", help="stop after N validations without improvement"),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="constant | cosine"),
    equivariance_value: float = typer.Option(
        TeacherLossWeights.equivariance_value, "--equivariance-value", help="weight of the equivariance term on keypoints (0: off)"
    ),
    equivariance_jacobian: float = typer.Option(
        TeacherLossWeights.equivariance_jacobian, "--equivariance-jacobian", help="weight of the equivariance term on jacobians (0: off)"
    ),
    config: Optional[Path] = ConfigOption,
    block_expansion: Optional[int] = typer.Option(None, "--block-expansion", help="override the config's block_expansion"),
    max_features: Optional[int] = typer.Option(None, "--max-features", help="override the config's max_features"),
    num_blocks: Optional[int] = typer.Option(None, "--num-blocks", help="override the config's num_blocks"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads while training (default: torch's)"),
    fmt: str = FormatOption,
) -> None:
    """Train the teacher: supervised + equivariance on synthetic faces, equivariance alone on user frames.

    \b
    Example:
      compressbench teacher train --steps 800 --out teacher-ckpt.pt
    """
    overrides = {"block_expansion": block_expansion, "max_features": max_features, "num_blocks": num_blocks}
    require_positive(steps=steps, batch=batch, val_frames=val_frames, input_size=size, val_every=val_every,
                     checkpoint_every=checkpoint_every, patience=patience, threads=threads, **overrides)
    require_seed(seed)
    resolve_device(device)
    prepare_output(fmt, None)
    check_model_path(out)
    check_writable(out)
    if resume is not None and not resume.is_file():
        raise CompressbenchError(f"--resume {resume} does not exist")
    options = TeacherTrainOptions(
        steps=steps, batch=batch, lr=lr, seed=seed, data=data, device=device, out=out, resume=resume,
        val_frames=val_frames, val_every=val_every, checkpoint_every=checkpoint_every, patience=patience, lr_schedule=lr_schedule, size=size,
        detector=_detector_config(config, **overrides),
        weights=replace(TeacherLossWeights(), equivariance_value=equivariance_value, equivariance_jacobian=equivariance_jacobian),
    )
    options.validate()
    options = replace(options, meta={"command": _command_line(options, config, overrides)})
    with torch_threads(threads):  # a training run beside other work must not take every core
        result = train_teacher(options)
    if not is_main_process():
        return
    last = result.history[-1] if result.history else {}
    best = next((row for row in result.history if row["step"] == result.best_step), {})
    record = {
        "steps": result.step,
        "stopped_early": result.stopped_early,
        "best_step": result.best_step,
        "best": {key: value for key, value in best.items() if key != "step"},
        "last": {key: value for key, value in last.items() if key != "step"},
        "seconds": round(result.seconds, 1),
        "checkpoint": str(out),
    }
    rows = [{"weights": "best", **best}, {"weights": "last", **last}]
    notes = [f"{result.step} steps in {result.seconds:.0f} s" + (" (stopped early)" if result.stopped_early else ""),
             f"checkpoint: {out} (kp_detector = best weights)"]
    emit(record, [Section("Teacher training", pd.DataFrame(rows), notes)], fmt, None)


@teacher_app.command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="checkpoint written by 'teacher train'"),
    out: Path = typer.Option(..., "--out", help="float16 weights file to write; its .json record goes next to it"),
    test_frames: int = typer.Option(256, "--test-frames", help="held-out synthetic test frames to measure on"),
    seed: int = typer.Option(0, "--seed", help="seed of the test frames"),
    fmt: str = FormatOption,
) -> None:
    """Write the checkpoint's best weights as float16 plus a JSON record with their measured test error.

    \b
    Example:
      compressbench teacher export teacher-ckpt.pt --out teacher-vox256.pt
    """
    require_positive(test_frames=test_frames)
    require_seed(seed)
    prepare_output(fmt, None)
    check_model_path(out)
    from compressbench.training.export import export_teacher

    record = export_teacher(checkpoint, out, test_frames=test_frames, seed=seed)
    rows = [{"file": record["file"], "size_mb": record["size_mb"], **{k: v for k, v in record["test"].items()}}]
    emit(record, [Section("Exported teacher weights", pd.DataFrame(rows), [f"record: {Path(out).with_suffix('.json')}"])], fmt, None)
