"""Distilling the teacher into a student with the generic trainer (seed 001).

Every batch is a pure function of (seed, batch index), like teacher training, so runs are
reproducible, resumable bit for bit, and shard across ``torchrun`` processes without loader state.
User frames need no labels: the teacher labels them on the fly (the loss only needs images).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method, parse_chain, stage_options
from compressbench.data import frames_for, load_frames
from compressbench.data.holdout import FrameSource
from compressbench.distillation.finetune import FinetuneSettings, finetune
from compressbench.distillation.losses import LOSSES, LossWeights
from compressbench.errors import CompressbenchError
from compressbench.files import check_writable
from compressbench.models import MODELS
from compressbench.models.checkpoint import read_checkpoint
from compressbench.models.students.families import STUDENTS, build_student
from compressbench.provenance import Provenance, Stage, derive, load_model, load_variant, provenance_of, save_model
from compressbench.records import ComparisonRecord
from compressbench.registry import Registry
from compressbench.training.distributed import is_main_process
from compressbench.training.teacher import LR_SCHEDULES, TeacherTrainOptions, train_teacher
from compressbench.training.teacher_losses import TeacherLossWeights
from compressbench.training.trainer import TrainResult

SYNTHETIC = "synthetic"

INITS: Registry[str] = Registry("student initialisation")
INITS.register("random", "the student's own random initialisation")
INITS.register("transfer", "pre-train on the supervised synthetic landmark task first (the distillation part of the blog)")
INITS.register("svd", "for a teacher after dsconv/asym: the closed-form SVD initialisation of --method")


@dataclass(frozen=True)
class DistillOptions:
    """Everything that decides a distillation run."""

    student: str = "lednet"  # student family, registered model or saved model file (ignored with method)
    method: str | None = None  # compression chain applied to the teacher to make the student
    width: float | None = None
    loss: str = "l1"
    weights: LossWeights = LossWeights()
    init: str = "random"
    transfer_steps: int = 300
    teacher: str = "teacher"
    teacher_checkpoint: Path | None = None
    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 0
    data: str = SYNTHETIC
    pool: int = 0  # > 0: label this many training frames with the teacher once and draw batches from them
    device: str = "cpu"
    out: Path | None = None  # the trained student (a compressbench model file)
    checkpoint: Path | None = None  # training checkpoint (resumable)
    resume: Path | None = None
    val_frames: int = 64
    eval_frames: int = 32  # held out for the final comparison (user frames: never trained on)
    val_every: int = 100
    patience: int | None = 5
    size: int = 256
    progress: bool = True
    meta: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Reject impossible options before any work starts."""
        for name in ("steps", "batch", "val_frames", "eval_frames", "val_every", "size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.pool, int) or isinstance(self.pool, bool) or self.pool < 0:
            raise CompressbenchError(f"--pool must be zero (fresh frames every step) or a positive frame count, got {self.pool!r}")
        if self.transfer_steps < 0:
            raise CompressbenchError(f"--transfer-steps must be zero or more, got {self.transfer_steps}")
        if not 0 < self.lr < math.inf:  # also refuses nan and inf, which train nothing but NaNs
            raise CompressbenchError(f"--lr must be positive and finite, got {self.lr!r}")
        if self.patience is not None and self.patience <= 0:
            raise CompressbenchError(f"--patience must be a positive integer, got {self.patience!r}")
        weights = {"--w-keypoints": self.weights.keypoints, "--w-jacobian": self.weights.jacobian,
                   "--w-heatmap": self.weights.heatmap, "--w-attention": self.weights.attention}  # fmt: skip
        for flag, weight in weights.items():
            if not 0 <= weight < math.inf:  # a negative weight would train the student away from the teacher
                raise CompressbenchError(f"{flag} must be zero or a positive finite number, got {weight!r}")
        if not 0 < self.weights.p < math.inf:
            raise CompressbenchError(f"--attention-p must be positive and finite, got {self.weights.p!r}")
        if self.width is not None and not self.width > 0:
            raise CompressbenchError(f"--width must be positive, got {self.width!r}")
        LOSSES.get(self.loss)
        INITS.get(self.init)
        LR_SCHEDULES.get(self.lr_schedule)
        if self.init == "svd" and not self.method:
            raise CompressbenchError("--init svd applies to a teacher made into a student with --method dsconv/asym")
        if self.method and self.width is not None:
            raise CompressbenchError("--width applies to the student families, not to a teacher made smaller with --method")
        if self.data != SYNTHETIC and not Path(self.data).exists():
            raise CompressbenchError(f"--data {self.data} is neither 'synthetic' nor an existing folder or video file")
        for path in (self.out, self.checkpoint):  # written after training: a bad path must fail now
            if path is not None:
                check_writable(path)

    def identity(self) -> dict:
        """What makes a checkpoint belong to this student (checked on --resume)."""
        return {"student": str(self.student), "method": self.method, "width": self.width, "loss": self.loss}


def build_student_module(options: DistillOptions, teacher: nn.Module) -> tuple[nn.Module, Provenance]:
    """The student to train and where it came from (so the trained student saves and reloads)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        if options.method:
            chain = parse_chain(options.method)
            # --init svd|random reaches the swap stages; transfer init is applied after the chain
            takes_init = any("init" in get_method(name).option_names() for name in chain)
            if options.init == "svd" and not takes_init:
                raise CompressbenchError(f"--init svd applies to the dsconv/asym stages, and --method {options.method} has none")
            common = {"init": options.init} if takes_init and options.init in ("svd", "random") else {}
            per_stage = stage_options(chain, common, {})
            start = teacher_provenance(options.teacher, teacher)
            frames = FrameSource(options.data, options.eval_frames, options.seed, options.size)
            context = CompressionContext(
                calibration_frames=frames.calibration, calibration_stream=frames.calibration_at,
                input_shape=(1, 3, options.size, options.size),
                seed=options.seed, show_progress=options.progress and is_main_process(),
            )  # fmt: skip
            variant = derive(teacher, chain, per_stage, context, provenance=start)[-1]
            if variant.int8:
                raise CompressbenchError(
                    f"--method {options.method} ends in int8, which cannot be trained; distil first, then quantize the student"
                )
            return variant.module.train(), variant.provenance
        name = str(options.student)
        if name in STUDENTS:
            module = build_student(name, width=options.width or 1.0)
            return module.train(), provenance_of(module)
        if name in MODELS:
            if options.width is not None:
                raise CompressbenchError(f"--width applies to the student families ({', '.join(STUDENTS.names())}), not {name}")
            loaded = load_variant(name, weights="random")
            return loaded.module.train(), loaded.provenance
        if Path(name).is_file():
            loaded = load_variant(name)
            return loaded.module.train(), loaded.provenance
    raise CompressbenchError(
        f"unknown student {name!r}; known: {', '.join(STUDENTS.names())} (or a registered model, a saved model file, or --method on the teacher)"
    )


def teacher_provenance(name: str, teacher: nn.Module) -> Provenance:
    """Where a ``--method`` chain on the teacher starts, so the student can be saved and reloaded."""
    provenance = provenance_of(str(name), teacher)
    if not provenance.rebuildable:
        raise CompressbenchError(
            f"--method needs a teacher that is a registered model or a saved compressbench model; {name} is neither"
        )
    return provenance


def validation_frames(options: DistillOptions) -> torch.Tensor:
    return frames_for(options.data, options.val_frames, split="val", seed=options.seed, size=options.size).images


def _user_frames(options: DistillOptions):
    """User frames: the first ``eval_frames`` are held out for the final comparison (as
    :class:`compressbench.comparison.FrameSource` does), the next ``val_frames`` validate, the rest train."""
    frames = load_frames(options.data, size=options.size)
    held_out = options.eval_frames + options.val_frames
    if len(frames) <= held_out:
        raise CompressbenchError(
            f"--data {options.data} has {len(frames)} frames; distilling needs more than the {held_out} held out "
            f"for evaluation and validation (--frames {options.eval_frames}, --val-frames {options.val_frames})"
        )
    return frames.slice(held_out, len(frames)), frames.slice(options.eval_frames, held_out).images


def transfer_initialise(student: nn.Module, options: DistillOptions) -> None:
    """Seed 001's transfer initialisation: train the student on the supervised synthetic landmark
    task (keypoints and jacobians against ground truth) before distilling. The equivariance terms
    are off, as for the default teacher: the labels make them unnecessary and they double the cost."""
    transfer = TeacherTrainOptions(
        steps=options.transfer_steps, batch=options.batch, lr=options.lr, seed=options.seed, device=options.device,
        val_frames=min(options.val_frames, 32), val_every=options.transfer_steps, size=options.size,
        progress=options.progress, detector=student.config if hasattr(student, "config") else TeacherTrainOptions().detector,
        weights=TeacherLossWeights(equivariance_value=0.0, equivariance_jacobian=0.0),
        description=f"transfer pre-training of {options.method or options.student} (supervised landmarks)",
    )  # fmt: skip
    train_teacher(transfer, model=student)


def check_resume_identity(path: Path, options: DistillOptions) -> None:
    payload = read_checkpoint(path)
    meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
    found = meta.get("distill")
    if found is None:
        raise CompressbenchError(f"--resume {path} is not a distillation checkpoint")
    expected = options.identity()
    if found != expected:
        differences = ", ".join(
            f"{key} {found.get(key)} there, {expected[key]} here" for key in expected if found.get(key) != expected[key]
        )
        raise CompressbenchError(
            f"--resume {path} belongs to another distillation run ({differences}); resume with the same "
            "--student, --method, --width and --loss, or start afresh without --resume"
        )


def distill(options: DistillOptions, teacher: nn.Module | None = None) -> tuple[nn.Module, TrainResult, Provenance]:
    """Train a student to agree with the teacher; returns ``(student, train result, its provenance)``
    (the provenance ends with the ``distill`` stage)."""
    options.validate()
    if options.resume is not None:
        check_resume_identity(Path(options.resume), options)
    teacher = teacher if teacher is not None else load_model(options.teacher, checkpoint=options.teacher_checkpoint)
    teacher = copy.deepcopy(teacher).eval()
    student, provenance = build_student_module(options, teacher)
    if options.init == "transfer" and options.resume is None and options.transfer_steps > 0:
        transfer_initialise(student, options)
        student.cpu()  # back beside the teacher (the trainer moves both to the device again)
    if options.data == SYNTHETIC:
        train_frames, val_images = None, validation_frames(options)
    else:
        train_frames, val_images = _user_frames(options)
    settings = FinetuneSettings(
        steps=options.steps, batch=options.batch, lr=options.lr, lr_schedule=options.lr_schedule,
        loss=options.loss, weights=options.weights, pool=options.pool, seed=options.seed, device=options.device,
        val_every=options.val_every, patience=options.patience, size=options.size, progress=options.progress,
        checkpoint=options.checkpoint, resume=options.resume,
        meta={
            **options.meta, "distill": options.identity(), "teacher": str(options.teacher), "batch": options.batch,
            "lr": options.lr, "lr_schedule": options.lr_schedule, "init": options.init, "data": options.data,
            "size": options.size, "pool": options.pool,
        },
        description=f"distilling {options.method or options.student} ({options.loss})",
        label=str(options.method or options.student),
    )  # fmt: skip
    result = finetune(student, teacher, settings, val_images, train_frames)
    return result.model.student.eval(), result, provenance.then(distill_stage(options, result))


def distill_stage(options: DistillOptions, result: TrainResult | None = None) -> Stage:
    """The training stage a distilled student's provenance records (identity on shapes)."""
    report = {} if result is None else {"steps": result.step, "best_step": result.best_step, "best_val_akd_px": result.best_value}
    return Stage("distill", {**options.identity(), "teacher": str(options.teacher)}, {}, report, False)


def save_distilled(student: nn.Module, provenance: Provenance, path: str | Path, metadata: dict) -> Path:
    """Save the trained student so that ``load_model(path)`` (and ``compress --model path``) rebuild it."""
    return save_model(student, provenance, path, metadata)


def student_label(options: DistillOptions) -> str:
    """A short row name: the method chain, a student name, or a saved file's stem."""
    if options.method:
        return options.method.replace(",", "+")
    name = str(options.student)
    return Path(name).stem if name.endswith(".pt") and Path(name).is_file() else name


def training_record(options: DistillOptions, result: TrainResult, settings: dict | None = None) -> dict:
    """What a distillation run did, for its comparison record and the saved student's metadata;
    ``settings`` are the options as given (e.g. every command-line option)."""
    return {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in (settings or {}).items()},
        "student": student_label(options), "loss": options.loss, "steps": result.step, "batch": options.batch,
        "lr": options.lr, "lr_schedule": options.lr_schedule, "pool": options.pool, "seed": options.seed,
        "w_keypoints": options.weights.keypoints, "best_step": result.best_step, "best_val_akd_px": result.best_value,
        "stopped_early": result.stopped_early, "seconds": round(result.seconds, 1), "options": options.identity(),
        "init": options.init, "history": result.history,
    }  # fmt: skip


def save_distilled_record(
    record: ComparisonRecord, student: nn.Module, provenance: Provenance, options: DistillOptions, result: TrainResult,
    settings: dict | None = None,
) -> tuple[ComparisonRecord, Path]:
    """Save the student with its training record and measured row. Returns the comparison ``record``
    with ``training`` and ``out`` (a new record) and the saved file."""
    training = training_record(options, result, settings)
    metadata = {"distill": options.identity(), "row": record.rows[-1].to_json(), "training": training}
    saved = save_distilled(student, provenance, options.out, metadata)
    return replace(record, training=training, out=str(saved)), saved


__all__ = [
    "INITS", "DistillOptions", "distill", "distill_stage", "save_distilled",
    "save_distilled_record", "training_record",
]  # fmt: skip
