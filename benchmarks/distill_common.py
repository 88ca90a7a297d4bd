"""What the distillation benchmarks share: the teacher they distil, held-out scoring, result files.

Imported by ``benchmarks/distill_losses.py`` and ``benchmarks/distill_ambition.py`` (run from the
repository root: ``.venv/bin/python benchmarks/<script>.py``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from compressbench.api import save
from compressbench.models import DetectorConfig, build_teacher
from compressbench.models.default_weights import has_default_weights
from compressbench.provenance import load_model
from compressbench.report import render_json, write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_TEACHER = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)  # a few MACs, any input size


@dataclass(frozen=True)
class TeacherChoice:
    """The teacher a benchmark distils: a name or file for DistillOptions, and what it is."""

    name: str
    checkpoint: Path | None
    description: str
    trained: bool


def add_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="teacher", help="registered name or saved model file (default: teacher)")
    parser.add_argument("--teacher-checkpoint", type=Path, default=None, help="FOMM checkpoint for the teacher")
    parser.add_argument("--quick", action="store_true", help="reduced random teacher and a few steps: checks the script runs")


def add_training_arguments(parser: argparse.ArgumentParser, **defaults) -> None:
    """The distillation budget both benchmarks take (``defaults`` overrides a default, by dest name),
    the output folder and the teacher."""
    values = {"steps": 1500, "batch": 16, "lr": 1e-3, "lr_schedule": "constant", "pool": 0, "w_keypoints": 1.0,
              "seed": 0, "val_frames": 64, "val_every": 100, "test_frames": 64, **defaults}  # fmt: skip
    parser.add_argument("--steps", type=int, default=values["steps"])
    parser.add_argument("--batch", type=int, default=values["batch"])
    parser.add_argument("--lr", type=float, default=values["lr"])
    parser.add_argument("--lr-schedule", default=values["lr_schedule"], help="constant | cosine")
    parser.add_argument("--pool", type=int, default=values["pool"], help="frames labelled once by the teacher (0: fresh frames every step)")
    parser.add_argument("--w-keypoints", type=float, default=values["w_keypoints"], help="weight of MSE(keypoints)")
    parser.add_argument("--seed", type=int, default=values["seed"])
    parser.add_argument("--val-frames", type=int, default=values["val_frames"])
    parser.add_argument("--val-every", type=int, default=values["val_every"])
    parser.add_argument("--test-frames", type=int, default=values["test_frames"], help="held-out synthetic test frames scored at the end")
    parser.add_argument("--device", default="cpu", help="training device: cpu | cuda")
    parser.add_argument("--out-dir", type=Path, default=None, help="where the .md/.json go (default: benchmarks/results)")
    add_teacher_arguments(parser)


def parse_with_quick(parser: argparse.ArgumentParser, argv: list[str] | None, quick: dict) -> argparse.Namespace:
    """Parse; with ``--quick`` the ``quick`` values replace the defaults (explicit options still win)."""
    args = parser.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv if argv is not None else sys.argv[1:])}
        for key, value in quick.items():
            if key not in given:
                setattr(args, key, value)
    return args


def choose_teacher(args: argparse.Namespace, workdir: Path) -> TeacherChoice:
    """The default (trained) teacher, a given one, or with ``--quick`` a reduced random one."""
    if args.quick:
        torch.manual_seed(args.seed)
        path = workdir / "quick-teacher.pt"
        save(build_teacher(QUICK_TEACHER), path)
        sizes = f"block_expansion {QUICK_TEACHER.block_expansion}, max_features {QUICK_TEACHER.max_features}, num_blocks {QUICK_TEACHER.num_blocks}"
        return TeacherChoice(str(path), None, f"reduced teacher with random weights ({sizes}; --quick)", False)
    if args.teacher_checkpoint is not None:
        return TeacherChoice(args.teacher, args.teacher_checkpoint, f"{args.teacher} with weights {args.teacher_checkpoint}", True)
    if args.teacher == "teacher":
        trained = has_default_weights("teacher")
        what = "the default trained weights" if trained else "RANDOM weights (no default weights installed)"
        return TeacherChoice("teacher", None, f"FOMM vox-256 teacher with {what}", trained)
    return TeacherChoice(args.teacher, None, f"{args.teacher}", True)


def load_teacher(choice: TeacherChoice) -> torch.nn.Module:
    return load_model(choice.name, checkpoint=choice.checkpoint)


def command_line() -> str:
    """The command that produced a result, as it would be typed from the repository root."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def output_stem(name: str, quick: bool, out_dir: Path | None) -> Path:
    """``results/<name>`` (``<name>-quick`` for a --quick run, so it never overwrites a real result)."""
    return (out_dir or RESULTS) / (f"{name}-quick" if quick else name)


def write_results(stem: Path, markdown: str, record: dict) -> tuple[Path, Path]:
    """``stem.md`` and ``stem.json``, each written atomically."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    write_atomic(js, render_json(record))
    write_atomic(md, markdown)
    return md, js


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="compressbench-distill-")
