"""The distillation ambition: a student >= 10x faster than the fp32 teacher (batch 1, 2 threads)
with AKD <= 2 px, and >= 25x with int8 on top.

Distils one student with one loss for a longer budget, then measures in one interleaved run
(:func:`compressbench.comparison.compare`): the fp32 teacher, the distilled student, the student
after the output-preserving ``exact`` rewrite (BatchNorm folded, strided separable anti-alias),
and that after ``quantize`` (static int8). AKD and jacobian error are against the teacher on
held-out synthetic test frames.

    .venv/bin/python benchmarks/distill_ambition.py --save benchmarks/students/squeeze-unet-0.25.pt   # ~50 min on 2 cores
    .venv/bin/python benchmarks/distill_ambition.py --student-file benchmarks/students/squeeze-unet-0.25.pt  # measure only
    .venv/bin/python benchmarks/distill_ambition.py --quick         # reduced teacher, a few steps

Writes benchmarks/results/distill_ambition.md and .json (``-quick`` files for --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_common import (  # noqa: E402
    RESULTS,
    add_training_arguments,
    choose_teacher,
    command_line,
    load_teacher,
    output_stem,
    parse_with_quick,
    scratch_dir,
    write_results,
)

from compressbench.comparison import compare  # noqa: E402
from compressbench.compression import CompressionContext, get_method  # noqa: E402
from compressbench.data import FrameSource  # noqa: E402
from compressbench.distillation.losses import LossWeights  # noqa: E402
from compressbench.distillation.train import DistillOptions, distill, save_distilled  # noqa: E402
from compressbench.errors import CompressbenchError  # noqa: E402
from compressbench.provenance import Stage, Variant, derive, load_model, provenance_of  # noqa: E402
from compressbench.report import render_markdown  # noqa: E402
from compressbench.report.comparison_tables import comparison_sections  # noqa: E402

TARGETS = {"fp32_speedup": 10.0, "int8_speedup": 25.0, "akd_px": 2.0}
QUICK = {"steps": 6, "batch": 2, "pool": 8, "val_frames": 4, "val_every": 3, "test_frames": 4, "repeats": 3, "warmup": 1, "calib": 4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="squeeze-unet", help="student family (default: squeeze-unet)")
    parser.add_argument("--width", type=float, default=0.25, help="channel multiplier (default: 0.25)")
    parser.add_argument("--loss", default=None, help="l1 | l2 | l3 (default: the best of results/distill_losses.json, else l1)")
    parser.add_argument("--init", default="random", help="random | transfer")
    # keypoint weight 10: at 1 the jacobian term dominates once keypoints are within a few px
    add_training_arguments(parser, steps=16000, lr=2e-3, lr_schedule="cosine", pool=8192, w_keypoints=10.0, val_every=500)
    parser.add_argument("--patience", type=int, default=None, help="validations without improvement before stopping")
    parser.add_argument("--threads", type=int, default=2, help="torch threads while measuring (default: 2)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calib", type=int, default=32, help="int8 calibration frames (synthetic 'train' split)")
    parser.add_argument("--save", type=Path, default=None, help="also save the distilled fp32 student here")
    parser.add_argument("--student-file", type=Path, default=None,
                        help="measure a student saved by an earlier --save instead of training one")
    parser.add_argument("--runtimes", default="torch,onnxruntime",
                        help="comparisons to run, each teacher and student on the same runtime (default: torch,onnxruntime)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="training checkpoint, written at every validation")
    parser.add_argument("--resume", type=Path, default=None, help="continue a stopped run from its --checkpoint")
    return parse_with_quick(parser, argv, QUICK)


def best_loss_so_far() -> tuple[str, str]:
    """The loss with the lowest held-out AKD in results/distill_losses.json, and why it was chosen."""
    path = RESULTS / "distill_losses.json"
    if not path.is_file():
        return "l1", "no results/distill_losses.json yet; seed 001 found L1 the most stable"
    rows = json.loads(path.read_text())["rows"]
    best = min(rows, key=lambda row: row["test_akd_px"])
    return best["loss"], f"lowest held-out AKD in {path.name} ({best['test_akd_px']:.3f} px)"


def int8_variant(exact: Variant, context: CompressionContext, calib: int, backend: str = "fx") -> Variant:
    """``exact`` + quantize (static int8 with ``backend``), carrying both stages."""
    options = [get_method("quantize").resolve({"calib": calib, "backend": backend})]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX prints per-op notices (cat with mixed qparams, deprecation)
        return derive(exact.module, ["quantize"], options, context, provenance=exact.provenance, name=exact.name)[-1]


def verdict(rows: list[dict]) -> dict:
    """The ambition's two checks on the measured rows (the teacher is row 0); rows without a
    latency (a runtime that could not take them) do not count."""
    floats = [row for row in rows[1:] if not row["macs_int8"]]
    ints = [row for row in rows[1:] if row["macs_int8"]]

    def best(candidates: list[dict]) -> dict | None:
        return max(candidates, key=lambda row: row["speedup"] or 0.0) if candidates else None

    out = {}
    for kind, candidates, target in (("fp32", floats, TARGETS["fp32_speedup"]), ("int8", ints, TARGETS["int8_speedup"])):
        row = best(candidates)
        out[kind] = {
            "variant": row["variant"] if row else None,
            "speedup": row["speedup"] if row else None,
            "akd_px": row["akd_px"] if row else None,
            "target_speedup": target,
            "target_akd_px": TARGETS["akd_px"],
            "met": bool(row and row["speedup"] and row["speedup"] >= target and row["akd_px"] <= TARGETS["akd_px"]),
        }
    return out


RUNTIME_TITLES = {"torch": "PyTorch eager", "onnxruntime": "ONNX Runtime (CPU execution provider)"}


def markdown(record: dict) -> str:
    training = record["training"]
    lines = [
        "# Distillation ambition: >= 10x (fp32) / >= 25x (int8) faster than the fp32 teacher, AKD <= 2 px\n",
        f"Command: `{record['command']}`\n",
        f"Teacher: {record['teacher']}. Student: {record['student']}, loss {record['loss']} ({record['loss_reason']}), "
        f"init {training['init']}, keypoint weight {training.get('w_keypoints', 1.0):g}.\n",
        f"Training: {training['steps']} steps (batch {training['batch']}, Adam lr {training['lr']} "
        f"{training.get('lr_schedule', 'constant')}, seed {training['seed']}"
        f"{', pool of ' + str(training['pool']) + ' teacher-labelled frames' if training.get('pool') else ''}) "
        f"in {training['seconds']:.0f} s; best validation AKD {training['best_val_akd_px']:.3f} px at step "
        f"{training['best_step']}{' (stopped early)' if training['stopped_early'] else ''}. "
        f"Training command: `{training.get('command', record['command'])}`\n",
        "## Verdict\n",
        "Each runtime is its own interleaved run: teacher and students on the same footing.\n",
    ]
    for runtime, checks in record["verdicts"].items():
        for kind, check in checks.items():
            speed = f"{check['speedup']:.2f}x" if check["speedup"] else "not measured"
            akd = f"{check['akd_px']:.3f} px" if check["akd_px"] is not None else "-"
            status = "met" if check["met"] else "NOT met"
            lines.append(f"- {RUNTIME_TITLES.get(runtime, runtime)}, {kind}: best {check['variant']}: {speed}, AKD {akd} "
                         f"(target >= {check['target_speedup']:g}x, AKD <= {check['target_akd_px']:g} px): **{status}**")
    lines.append("")
    for runtime, comparison in record["comparisons"].items():
        lines.append(f"## {RUNTIME_TITLES.get(runtime, runtime)}\n")
        lines.append(render_markdown(comparison_sections(comparison), heading_level=3))
        env = comparison["env"]
        lines.append(
            f"Measured with batch {env['batch']}, input {env['input_shape']}, {env['threads']} threads, {env['repeats']} "
            f"interleaved rounds after {env['warmup']} warm-up; torch {env['torch']}, {env['cpu']} ({env['cpu_count']} CPUs), "
            f"{env['date']}.\n"
        )
    lines.append(
        f"Load average before/after: {record['load_before']} / {record['load_after']} (a shared machine: the ratios come "
        "from one interleaved run, the absolute times drift)."
    )
    for note in record["notes"]:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines) + "\n"


def train_student(args: argparse.Namespace, choice, teacher: nn.Module, loss: str) -> tuple[nn.Module, dict, dict]:
    """Distil the student; returns it, its identity and the training record (also saved with it)."""
    options = DistillOptions(
        student=args.student, width=args.width, loss=loss, init=args.init, teacher=choice.name,
        teacher_checkpoint=choice.checkpoint, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
        lr_schedule=args.lr_schedule, pool=args.pool, weights=LossWeights(keypoints=args.w_keypoints),
        device=args.device, val_frames=args.val_frames, eval_frames=args.test_frames, val_every=args.val_every,
        patience=args.patience, checkpoint=args.checkpoint, resume=args.resume,
    )  # fmt: skip
    student, result, provenance = distill(options, teacher=teacher)
    student = student.cpu().eval()
    training = {
        "command": command_line(), "student": f"{args.student} at width {args.width:g}", "loss": loss,
        "steps": result.step, "batch": args.batch, "lr": args.lr, "lr_schedule": args.lr_schedule, "pool": args.pool,
        "w_keypoints": args.w_keypoints, "seed": args.seed, "init": args.init, "best_step": result.best_step,
        "best_val_akd_px": result.best_value, "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 1), "history": result.history,
    }  # fmt: skip
    if args.save is not None:
        save_distilled(student, provenance, args.save, {"distill": options.identity(), "benchmark": "distill_ambition", "training": training})
    return student, options.identity(), training


def saved_student(path: Path) -> tuple[nn.Module, dict, dict]:
    """A student saved by an earlier run of this script, with the identity and training record it carries."""
    from compressbench.models.checkpoint import read_checkpoint

    meta = read_checkpoint(path).get("metadata") or {}
    if "training" not in meta:
        raise CompressbenchError(f"{path} carries no training record; save students with this script's --save")
    return load_model(str(path)).eval(), meta.get("distill", {}), meta["training"]


def measure(args: argparse.Namespace, teacher: nn.Module, student: nn.Module, identity: dict, label: str) -> dict:
    """One interleaved comparison per runtime: the fp32 teacher against the student, its exact
    rewrite and that in int8 (FX for PyTorch; ONNX Runtime's quantizer for ONNX Runtime)."""
    frames = FrameSource("synthetic", args.test_frames, args.seed)
    context = CompressionContext(calibration_frames=frames.calibration, seed=args.seed, show_progress=True)
    distilled = Variant(label, student, provenance_of(student).then(Stage("distill", identity)))
    exact = derive(student, ["exact"], None, context, provenance=distilled.provenance, name=label)[-1]
    comparisons = {}
    for runtime in args.runtimes.split(","):
        backend = "fx" if runtime == "torch" else "onnxruntime"
        rows = [distilled, exact, int8_variant(exact, context, args.calib, backend)]
        comparisons[runtime] = compare(
            teacher.cpu().eval(), rows, frames.evaluation(), threads=args.threads, warmup=args.warmup,
            repeats=args.repeats, batch=1, runtime=runtime, breakdown=runtime == "torch",
        )  # fmt: skip
    return comparisons


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    notes: list[str] = []
    with scratch_dir() as workdir:
        choice = choose_teacher(args, Path(workdir))
        teacher = load_teacher(choice)
        if args.student_file is not None:
            student, identity, training = saved_student(args.student_file)
            notes.append(f"measured the student saved in {args.student_file} (trained by: `{training.get('command', '?')}`)")
            previous = training.get("previous")
            if previous:
                notes.append(
                    f"trained in two stages: {previous['steps']} steps from random weights (`{previous.get('command', '?')}`; "
                    f"best validation AKD {previous['best_val_akd_px']:.3f} px), then {training['steps']} steps from those "
                    f"weights on a fresh pool with a lower learning rate (the command above)"
                )
        else:
            loss, loss_reason = (args.loss, "given") if args.loss else best_loss_so_far()
            student, identity, training = train_student(args, choice, teacher, loss)
            training["loss_reason"] = loss_reason
        label = f"{identity.get('student', args.student)}-{identity.get('width', args.width):g}-{identity.get('loss', 'l1')}"
        comparisons = measure(args, teacher, student, identity, label)
    if not choice.trained:
        notes.append("the teacher has random weights: the speed-ups are real, the AKD says nothing about the ambition")
    record = {
        "command": command_line(),
        "teacher": choice.description,
        "student": training.get("student"),
        "loss": training.get("loss"),
        "loss_reason": training.get("loss_reason", "see the training command"),
        "training": training,
        "comparisons": comparisons,
        "verdicts": {runtime: verdict(c["rows"]) for runtime, c in comparisons.items()},
        "targets": TARGETS,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "notes": notes,
    }
    md, js = write_results(output_stem("distill_ambition", args.quick, args.out_dir), markdown(record), record)
    print(markdown(record))
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
