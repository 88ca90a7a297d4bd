"""Recovery that generalises: does an augmented, refreshed pool close the gap between validation and
held-out AKD that a fixed pool leaves after pruning?

For each prune ratio of the default teacher, ``recover`` runs the same steps with each setting:

- ``off``: one fixed pool of ``--pool`` calibration frames labelled once (what recover does by default);
- ``augment``: the same pool, every batch augmented (``--augment``, default ``full``: random affine
  warp + flip + colour jitter) and labelled by the teacher in the step;
- ``fresh``: no augmentation, the pool replaced by the next ``--pool`` calibration frames every
  ``--refresh`` steps (each new pool labelled once);
- ``augment+fresh``: both.
- ``augment-pool+fresh``: each fresh pool augmented once and labelled once (``augment_per=pool``),
  so a step costs about a fixed pool's step, not a teacher forward more.

``--seconds S`` gives every run the same training time instead of the same steps: before the runs
each setting's seconds per step are measured on the pruned skeleton (``step_cost``: the student's
step, the teacher's labelling where it runs in the step, each refreshed pool's labelling spread over
its steps) and its steps set to fit ``S``; the record keeps the planned and the spent seconds.

Each run records the validation AKD (the best, on the ``--val-frames`` calibration frames that pick
the best weights), the held-out AKD (``--eval-frames`` synthetic test-split frames no run ever sees),
the gap between the two, the AKD on the first training-pool frames (how far a run memorised its pool)
and the cost per step. Before the runs a label check measures, on the unpruned teacher, how far the
teacher's keypoints on flipped and warped frames are from its keypoints on the originals transformed
analytically: the error a recovery would learn from if it transformed labels instead of re-labelling.

    .venv/bin/python benchmarks/recover_generalisation.py --steps 1500 --out benchmarks/results/local/recover-generalisation
    .venv/bin/python benchmarks/recover_generalisation.py --quick --out /tmp/rg   # a tiny run that checks the script

Writes ``recover_generalisation.json`` and ``.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from compressbench.compression import CompressionContext, get_method
from compressbench.data import FrameSource
from compressbench.data.augment import AUGMENTS, affine_matrices, flip_frames, warp_frames
from compressbench.distillation.finetune import FinetuneSettings, agreement, step_cost, training_step_s
from compressbench.errors import CompressbenchError
from compressbench.files import render_json, write_atomic
from compressbench.profiling.machine import this_machine
from compressbench.progress import progress_bar
from compressbench.provenance import derive, load_model

SETTINGS = ("off", "augment", "fresh", "augment+fresh", "augment-pool+fresh")
QUICK = {"steps": 20, "size": 128, "pool": 48, "val_frames": 16, "eval_frames": 16, "refresh": 10, "ratios": "0.7",
         "label_frames": 8, "val_every": 10}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for recover_generalisation.json and .md")
    parser.add_argument("--ratios", default="0.7,0.5", help="prune ratios, comma-separated (default: 0.7,0.5)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    parser.add_argument("--steps", type=int, default=1500, help="recover steps per run (default: 1500)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="equal training time per run instead of --steps (each setting's steps from its measured cost)"
    )
    parser.add_argument(
        "--augment", default="full", choices=AUGMENTS[1:], help="the augment settings' kind (default: full)"
    )
    parser.add_argument(
        "--refresh", type=int, default=256, help="the fresh settings' steps between pool refreshes (default: 256)"
    )
    parser.add_argument("--pool", type=int, default=1024, help="pool frames (default: 1024, recover's)")
    parser.add_argument("--val-frames", type=int, default=64, help="validation frames (default: 64, recover's)")
    parser.add_argument(
        "--val-every", type=int, default=None, help="steps between validations (default: recover's, scaled)"
    )
    parser.add_argument("--eval-frames", type=int, default=128, help="held-out test-split frames (default: 128)")
    parser.add_argument("--label-frames", type=int, default=64, help="frames for the label check (default: 64)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="recover's training precision")
    parser.add_argument("--size", type=int, default=256, help="frame size (default: 256, the teacher's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and steps: checks the script, measures nothing"
    )
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.ratio_list = [float(r) for r in args.ratios.split(",") if r.strip()]
    args.setting_list = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in args.setting_list if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds must be positive, got {args.seconds}")
    return args


def recover_options(setting: str, args: argparse.Namespace, steps: int | None = None) -> dict:
    options = {"steps": steps or args.steps, "pool": args.pool, "val_frames": args.val_frames, "patience": 0,
               "precision": args.precision, "val_every": args.val_every}  # fmt: skip
    if "augment" in setting:
        options["augment"] = args.augment
    if "augment-pool" in setting:
        options["augment_per"] = "pool"
    if "fresh" in setting:
        options["refresh"] = args.refresh
    return options


def _akd_px(a: torch.Tensor, b: torch.Tensor, size: int) -> float:
    return float((a - b).norm(dim=-1).mean() * size / 2)


def label_check(teacher: torch.nn.Module, images: torch.Tensor, seed: int) -> dict:
    """How far analytically transformed labels are from the teacher's labels of the transformed frames."""
    size = images.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        kp = teacher(images)["value"]
        theta = affine_matrices(len(images), generator)
        warped_kp = teacher(warp_frames(images, theta))["value"]
        flipped_kp = teacher(flip_frames(images, torch.ones(len(images), dtype=torch.bool)))["value"]
    linear, shift = theta[:, :, :2].float(), theta[:, :, 2].float()
    analytic_warp = torch.linalg.solve(linear[:, None], (kp - shift[:, None])[..., None])[..., 0]  # A^-1 (kp - b)
    mirrored = kp * torch.tensor([-1.0, 1.0])
    record = {
        "frames": len(images),
        "warp_moves_keypoints_px": _akd_px(warped_kp, kp, size),
        "warp_analytic_vs_relabelled_px": _akd_px(analytic_warp, warped_kp, size),
        "flip_moves_keypoints_px": _akd_px(flipped_kp, kp, size),
        "flip_analytic_vs_relabelled_px": _akd_px(mirrored, flipped_kp, size),
    }
    try:  # the best one-to-one matching of mirrored keypoints to the flipped frame's: a learnt left/right swap
        from scipy.optimize import linear_sum_assignment

        cost = (mirrored[:, :, None] - flipped_kp[:, None]).norm(dim=-1).mean(0)
        rows, cols = linear_sum_assignment(cost.numpy())
        record["flip_analytic_best_matching_px"] = _akd_px(mirrored[:, rows], flipped_kp[:, cols], size)
        record["flip_best_matching"] = [int(c) for c in cols]
    except ImportError:
        pass
    return record


def planned_step_s(teacher, ratio: float, setting: str, args, frames: FrameSource) -> float:
    """Seconds per recover step of ``setting`` on the prune-``ratio`` skeleton, labelling included."""
    context = CompressionContext(frames.calibration, input_shape=(1, 3, args.size, args.size), seed=args.seed,
                                 show_progress=False)  # fmt: skip
    skeleton = get_method("prune").apply(teacher, get_method("prune").resolve({"ratio": ratio}), context).module
    options = get_method("recover").resolve(recover_options(setting, args))
    settings = FinetuneSettings(batch=options["batch"], pool=options["pool"], augment=options["augment"],
                                augment_per=options["augment_per"], refresh=options["refresh"],
                                channels_last=options["channels_last"], precision=options["precision"], size=args.size)  # fmt: skip
    return training_step_s(step_cost(skeleton, teacher, settings, frames.calibration_at(0, options["batch"])), settings)


def one_run(teacher, ratio: float, setting: str, args, frames: FrameSource, eval_images, pool_images, steps=None) -> dict:
    context = CompressionContext(
        frames.calibration, input_shape=(1, 3, args.size, args.size), seed=args.seed, show_progress=True,
        calibration_stream=frames.calibration_at,
    )  # fmt: skip
    options = recover_options(setting, args, steps)
    names = ["prune", "recover"]
    resolved = [get_method("prune").resolve({"ratio": ratio}), get_method("recover").resolve(options)]
    started = time.perf_counter()
    pruned, recovered = derive(teacher, names, resolved, context)
    wall = time.perf_counter() - started
    report = recovered.stages[-1].report
    held_out = agreement(recovered.module, teacher, eval_images)
    on_pool = agreement(recovered.module, teacher, pool_images)
    steps = max(report["steps_run"], 1)
    return {
        "ratio": ratio,
        "setting": setting,
        "options": {k: v for k, v in options.items() if v is not None},
        "lr": report["lr"],
        "val_every": report["val_every"],
        "steps_run": report["steps_run"],
        "best_step": report["best_step"],
        "pools_used": report["pools_used"],
        "val_akd_before_px": report["val_akd_before_px"],
        "val_akd_px": report["val_akd_after_px"],
        "held_out_akd_px": held_out["akd_px"],
        "gap_px": held_out["akd_px"] - report["val_akd_after_px"],
        "held_out_jacobian_error": held_out["jacobian_error"],
        "pool_akd_px": on_pool["akd_px"],  # on frames of the first pool, unaugmented: how far it memorised them
        "train_seconds": report["seconds"],
        "seconds_per_step": report["seconds"] / steps,
        "wall_seconds": wall,  # prune + labelling + training + validations
        "validation": report["validation"],
    }


def markdown(record: dict) -> str:
    lines = [
        "# recover: validation and held-out AKD by setting",
        "",
        f"`{record['command']}`",
        "",
        f"{record['machine']}, torch {record['torch']}, {record['threads']} threads, {record['date']}.",
        (f"{record['seconds']:g} s of training per run (steps per setting from its measured cost)"
         if record.get("seconds") else f"{record['steps']} steps") + f", pool {record['pool']}, {record['val_frames']} validation frames, "
        f"{record['eval_frames']} held-out frames, {record['size']} px, {record['precision']}.",
        "",
        "| ratio | setting | steps | val AKD px | held-out AKD px | gap px | pool AKD px | s/step | train s | pools |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in record["runs"]:
        lines.append(
            f"| {run['ratio']} | {run['setting']} | {run['steps_run']} | {run['val_akd_px']:.3f} | "
            f"{run['held_out_akd_px']:.3f} | {run['gap_px']:+.3f} | {run['pool_akd_px']:.3f} | "
            f"{run['seconds_per_step']:.3f} | {run['train_seconds']:.0f} | {run['pools_used']} |"
        )
    check = record["label_check"]
    lines += [
        "",
        f"Label check on the teacher ({check['frames']} frames): a warp moves its keypoints "
        f"{check['warp_moves_keypoints_px']:.2f} px; its analytic transform is "
        f"{check['warp_analytic_vs_relabelled_px']:.2f} px from the teacher's keypoints on the warped frames. "
        f"A flip: mirrored keypoints are {check['flip_analytic_vs_relabelled_px']:.2f} px from the teacher's "
        + (f"({check['flip_analytic_best_matching_px']:.2f} px after the best matching of keypoints)." if
           "flip_analytic_best_matching_px" in check else "."),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    teacher = load_model("teacher").eval()
    frames = FrameSource("synthetic", args.eval_frames, args.seed, args.size)
    eval_images = frames.evaluation().images
    pool_images = frames.calibration_at(args.val_frames, min(args.pool, 64))
    check = label_check(teacher, frames.calibration_at(0, args.label_frames), args.seed)
    print(json.dumps({"label_check": check}, indent=1), file=sys.stderr)
    runs = []
    combos = [(r, s) for r in args.ratio_list for s in args.setting_list]
    plan = {}  # (ratio, setting) -> (planned s/step, steps) under --seconds
    if args.seconds is not None:
        for ratio, setting in combos:
            per_step = planned_step_s(teacher, ratio, setting, args, frames)
            plan[ratio, setting] = (per_step, max(1, int(args.seconds / per_step)))
    with progress_bar("recover_generalisation runs", len(combos)) as advance:
        for ratio, setting in combos:
            planned = plan.get((ratio, setting))
            run = one_run(teacher, ratio, setting, args, frames, eval_images, pool_images, planned and planned[1])
            if planned:
                run["planned_seconds_per_step"] = planned[0]
            runs.append(run)
            advance(ratio=ratio, setting=setting, held_out=run["held_out_akd_px"], gap=run["gap_px"])
    record = {
        "benchmark": "recover_generalisation",
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": this_machine(args.threads).label,
        "machine_fingerprint": this_machine(args.threads).to_dict(),
        "torch": torch.__version__,
        "threads": args.threads,
        "quick": args.quick,
        **{k: getattr(args, k) for k in ("steps", "seconds", "pool", "val_frames", "eval_frames", "size", "precision", "seed",
                                          "augment", "refresh")},
        "label_check": check,
        "runs": runs,
    }  # fmt: skip
    write_atomic(args.out / "recover_generalisation.json", render_json(record))
    text = markdown(record)
    write_atomic(args.out / "recover_generalisation.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompressbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
