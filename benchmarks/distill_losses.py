"""Seed 001's comparison: one student distilled with L1, L2 and L3 under the same budget.

Every run shares the student's initial weights, the batches, the learning rate, the steps and the
seed; only the loss differs. Each trained student is scored against the teacher on held-out
synthetic test frames (never trained or validated on): AKD in pixels and jacobian error.

    .venv/bin/python benchmarks/distill_losses.py                # lednet, 1500 steps, batch 16 (long)
    .venv/bin/python benchmarks/distill_losses.py --quick        # reduced teacher, a few steps

Writes benchmarks/results/distill_losses.md and .json (``-quick`` files for --quick).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_common import (  # noqa: E402
    add_training_arguments,
    choose_teacher,
    command_line,
    load_teacher,
    output_stem,
    parse_with_quick,
    scratch_dir,
    write_results,
)

from compressbench.data import FrameSource  # noqa: E402
from compressbench.distillation import LOSSES  # noqa: E402
from compressbench.distillation.finetune import agreement  # noqa: E402
from compressbench.distillation.losses import LossWeights  # noqa: E402
from compressbench.distillation.train import DistillOptions, distill  # noqa: E402
from compressbench.profiling.environment import environment  # noqa: E402
from compressbench.report import Section, render_markdown  # noqa: E402

QUICK = {"steps": 6, "batch": 2, "val_frames": 4, "val_every": 3, "test_frames": 8, "pool": 0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="lednet", help="student family or registered model (default: lednet)")
    parser.add_argument("--width", type=float, default=None, help="channel multiplier of a student family")
    parser.add_argument("--losses", default="l1,l2,l3", help="comma-separated losses to compare")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's)")
    add_training_arguments(parser)
    return parse_with_quick(parser, argv, QUICK)


def run_loss(args: argparse.Namespace, teacher_name: str, checkpoint, loss: str, test_images: torch.Tensor, teacher) -> dict:
    options = DistillOptions(
        student=args.student, width=args.width, loss=loss, teacher=teacher_name, teacher_checkpoint=checkpoint,
        steps=args.steps, batch=args.batch, lr=args.lr, lr_schedule=args.lr_schedule, pool=args.pool,
        weights=LossWeights(keypoints=args.w_keypoints), seed=args.seed, data="synthetic", device=args.device,
        val_frames=args.val_frames, eval_frames=args.test_frames, val_every=args.val_every, patience=None,
    )  # fmt: skip
    started = time.perf_counter()
    student, result, _ = distill(options, teacher=teacher)
    seconds = time.perf_counter() - started
    test = agreement(student.cpu(), teacher.cpu(), test_images)
    return {
        "loss": loss,
        "terms": "+".join(LOSSES.get(loss).terms),
        "best_val_akd_px": result.best_value,
        "best_step": result.best_step,
        "test_akd_px": test["akd_px"],
        "test_jacobian_error": test["jacobian_error"],
        "final_train_loss": result.history[-1]["loss"] if result.history else None,
        "train_seconds": round(seconds, 1),
        "history": result.history,
    }


def markdown(record: dict) -> str:
    columns = ["loss", "terms", "test_akd_px", "test_jacobian_error", "best_val_akd_px", "best_step", "train_seconds"]
    frame = pd.DataFrame([{key: row[key] for key in columns} for row in record["rows"]])
    budget = record["budget"]
    notes = [
        f"student {record['student']}, teacher: {record['teacher']}",
        f"same budget for every loss: {budget['steps']} steps, batch {budget['batch']}, Adam lr {budget['lr']} "
        f"{budget.get('lr_schedule', 'constant')}, keypoint weight {budget.get('w_keypoints', 1.0):g}, "
        f"{'a pool of ' + str(budget['pool']) + ' teacher-labelled frames, ' if budget.get('pool') else ''}"
        f"seed {budget['seed']}, no early stopping; the weights kept are the best by validation AKD "
        f"({budget['val_frames']} synthetic 'val' frames, every {budget['val_every']} steps)",
        f"test_*: against the teacher on {budget['test_frames']} synthetic 'test' frames never seen in training or "
        "validation; AKD in pixels of the 256x256 input, jacobian error = mean |J_s - J_t|",
    ]
    if not record["teacher_trained"]:
        notes.append("the teacher has random weights, so these numbers check the pipeline, not the losses")
    env = record["env"]
    return "\n".join(
        [
            "# Distillation losses (seed 001): L1 vs L2 vs L3\n",
            f"Command: `{record['command']}`\n",
            render_markdown([Section("Held-out agreement with the teacher", frame, notes)]),
            f"Environment: torch {env['torch']}, {env['cpu']} ({env['cpu_count']} CPUs), {env['threads']} threads, "
            f"{env['platform']}, {env['date']}.\n",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    for name in losses:
        LOSSES.get(name)
    with scratch_dir() as workdir:
        choice = choose_teacher(args, Path(workdir))
        teacher = load_teacher(choice)
        test_images = FrameSource("synthetic", args.test_frames, args.seed).evaluation().images
        rows = []
        for loss in losses:
            print(f"== {loss} ==", file=sys.stderr, flush=True)
            rows.append(run_loss(args, choice.name, choice.checkpoint, loss, test_images, teacher))
    record = {
        "command": command_line(),
        "student": args.student + (f" (width {args.width:g})" if args.width else ""),
        "teacher": choice.description,
        "teacher_trained": choice.trained,
        "budget": {
            key: getattr(args, key)
            for key in ("steps", "batch", "lr", "lr_schedule", "pool", "w_keypoints", "seed", "val_frames", "val_every", "test_frames")
        },
        "rows": rows,
        "env": environment(),
    }
    md, js = write_results(output_stem("distill_losses", args.quick, args.out_dir), markdown(record), record)
    print(markdown(record))
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
