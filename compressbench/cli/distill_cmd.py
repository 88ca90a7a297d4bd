"""``compressbench distill``: train a small student to agree with the teacher, then compare."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import (
    FormatOption,
    OutputOption,
    command_form,
    emit,
    prepare_output,
    require_non_negative,
    require_positive,
    require_seed,
)
from compressbench.errors import CompressbenchError


@app.command("distill")
def distill_command(
    ctx: typer.Context,
    student: str = typer.Option("lednet", "--student", "-s", help="student family (see 'models'), a registered model, or a saved model file"),
    method: Optional[str] = typer.Option(None, "--method", help="make the student from the teacher with this chain (e.g. dsconv, asym, prune)"),
    width: Optional[float] = typer.Option(None, "--width", help="channel multiplier of a student family"),
    loss: str = typer.Option("l1", "--loss", help="l1: MSE(keypoints)+MSE(jacobians) | l2: + MSE(heatmaps) | l3: + MSE(attention maps) (the blog's distillation part)"),
    w_keypoints: float = typer.Option(1.0, "--w-keypoints", help="weight of MSE(keypoints)"),
    w_jacobian: float = typer.Option(1.0, "--w-jacobian", help="weight of MSE(jacobians)"),
    w_heatmap: float = typer.Option(1.0, "--w-heatmap", help="weight of MSE(heatmaps) (l2, l3)"),
    w_attention: float = typer.Option(1.0, "--w-attention", help="weight of MSE(attention maps) (l3)"),
    attention_p: float = typer.Option(2.0, "--attention-p", help="p of the attention map sum_c |A_c|^p"),
    init: str = typer.Option("random", "--init", help="random | transfer | svd (with --method dsconv/asym)"),
    transfer_steps: int = typer.Option(300, "--transfer-steps", help="supervised pre-training steps for --init transfer"),
    teacher: str = typer.Option("teacher", "--teacher", help="the teacher: registered name or saved model file"),
    teacher_checkpoint: Optional[Path] = typer.Option(None, "--teacher-checkpoint", help="FOMM checkpoint for the teacher"),
    steps: int = typer.Option(3000, "--steps", help="training steps"),
    batch: int = typer.Option(16, "--batch", "-b", help="frames per step"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate"),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="constant | cosine (down to 5% of --lr at the last step)"),
    pool: int = typer.Option(0, "--pool", help="label this many training frames with the teacher once and train on them (0: fresh frames, teacher run every step)"),
    seed: int = typer.Option(0, "--seed", help="seed of everything random"),
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic, or a folder of images / a video (no labels needed)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    out: Path = typer.Option(..., "--out", help="where to save the trained student, e.g. lednet.pt (required: nothing is written into the current folder unasked); load it with --model FILE"),
    checkpoint: Optional[Path] = typer.Option(
        None, "--train-checkpoint", help="training state written at every validation (for --resume); --checkpoint is FOMM weights elsewhere"
    ),
    resume: Optional[Path] = typer.Option(None, "--resume", help="resume from a training checkpoint of the same run"),
    val_frames: int = typer.Option(64, "--val-frames", help="validation frames (AKD against the teacher)"),
    val_every: int = typer.Option(100, "--val-every", help="validate every N steps"),
    patience: int = typer.Option(5, "--patience", help="validations without improvement before stopping early (0: never stop)"),
    size: int = typer.Option(256, "--input-size", help="frame side in pixels (smaller for small test teachers)"),
    frames: int = typer.Option(32, "--frames", "-n", help="held-out frames of the final comparison"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads while training and measuring (default: torch's)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed interleaved rounds of the comparison"),
    repeats: int = typer.Option(30, "--repeats", "-r", help="timed interleaved rounds of the comparison"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Distil the teacher into a student (the distillation note's losses l1/l2/l3), save it, and compare it with the teacher.

    \b
    Example:
      compressbench distill --student lednet --loss l3 --steps 3000 --out lednet.pt
    """
    import compressbench.api as api
    from compressbench.distillation.losses import LossWeights
    from compressbench.report.comparison_tables import comparison_sections
    from compressbench.report.training_tables import training_section

    require_positive(frames=frames, threads=threads, repeats=repeats)
    require_non_negative(warmup=warmup, patience=patience)
    require_seed(seed)
    if method is not None and ctx.get_parameter_source("student").name == "COMMANDLINE":
        raise CompressbenchError(
            f"--student {student} and --method {method} both say what the student is: --method makes it from the "
            "teacher, --student names a family or a model; give one"
        )
    prepare_output(fmt, output)
    run = command_form(api.distill)(
        student, teacher=teacher, teacher_checkpoint=teacher_checkpoint, out=out, threads=threads, warmup=warmup,
        repeats=repeats, settings=ctx.params, show_progress=True, method=method, width=width, loss=loss, init=init,
        transfer_steps=transfer_steps, weights=LossWeights(w_keypoints, w_jacobian, w_heatmap, w_attention, attention_p),
        steps=steps, batch=batch, lr=lr, lr_schedule=lr_schedule, seed=seed, data=data, pool=pool, device=device,
        checkpoint=checkpoint, resume=resume, val_frames=val_frames, eval_frames=frames, val_every=val_every,
        patience=patience or None, size=size,
    )  # fmt: skip
    if run.record is None:  # under torchrun, rank 0 alone measures, saves and reports
        return
    emit(run.record, comparison_sections(run.record) + [training_section(run.record.training, run.saved)], fmt, output)
