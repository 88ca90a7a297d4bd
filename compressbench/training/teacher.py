"""Training the teacher: supervised on synthetic faces, or by equivariance alone on user frames.

:func:`train_teacher` builds the data, the losses and the validation for the generic
:func:`compressbench.training.trainer.train`. Every batch is a pure function of (seed, batch index):
its frames and its random warps come from generators seeded by both, so a run is reproducible,
resumable at any step and shardable across processes without any data-loader state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

import compressbench.metrics as metrics
from compressbench.data import load_frames, synthetic_frames
from compressbench.errors import CompressbenchError
from compressbench.evaluation import collect_outputs
from compressbench.models.detector import DetectorConfig, build_teacher
from compressbench.registry import Registry
from compressbench.training.equivariance_warps import Warp, WarpConfig, random_warp
from compressbench.training.teacher_losses import TeacherLossWeights, teacher_loss
from compressbench.training.trainer import TrainConfig, TrainResult, indexed, train

SYNTHETIC = "synthetic"
EVAL_BATCH = 32
# user frames: a fixed draw of warps scores equivariance on the held-out frames
VALIDATION_WARP_SEED_OFFSET = 7919

LR_SCHEDULES: Registry[Callable[[int, int], float]] = Registry("learning-rate schedule")
LR_SCHEDULES.register("constant", lambda step, steps: 1.0)
# cosine from 1 down to 5% of the initial rate over the run
LR_SCHEDULES.register("cosine", lambda step, steps: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))


@dataclass(frozen=True)
class TeacherTrainOptions:
    """Everything that decides a teacher training run."""

    steps: int = 800
    batch: int = 16
    lr: float = 5e-4
    seed: int = 0
    data: str = SYNTHETIC  # "synthetic" or a folder of images / a video file
    device: str = "cpu"
    out: Path | None = None  # checkpoint (FOMM layout), written at every validation
    resume: Path | None = None
    val_frames: int = 64
    val_every: int = 100
    checkpoint_every: int | None = None  # extra checkpoints between validations (results unchanged)
    patience: int | None = None
    lr_schedule: str = "cosine"
    detector: DetectorConfig = DetectorConfig()
    weights: TeacherLossWeights = TeacherLossWeights()
    warp: WarpConfig = WarpConfig()
    size: int = 256
    progress: bool = True
    description: str = "training teacher"  # the progress bar's label
    meta: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Reject impossible options before any work starts."""
        if not isinstance(self.seed, int) or self.seed < 0:
            raise CompressbenchError(f"--seed must be zero or a positive integer, got {self.seed!r}")
        for name in ("steps", "batch", "val_frames", "val_every", "size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not 0 < self.lr < math.inf:  # also refuses nan and inf, which train nothing but NaNs
            raise CompressbenchError(f"--lr must be positive and finite, got {self.lr!r}")
        for name, weight in vars(self.weights).items():
            if not 0 <= weight < math.inf:
                flag = f"--{name.replace('_', '-')}" if name.startswith("equivariance") else f"loss weight {name}"
                raise CompressbenchError(f"loss weights must be zero or positive (and finite): {flag} is {weight!r}")
        for name in ("patience", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        LR_SCHEDULES.get(self.lr_schedule)
        if self.data != SYNTHETIC and not Path(self.data).exists():
            raise CompressbenchError(f"--data {self.data} is neither 'synthetic' nor an existing folder or video file")


@dataclass
class TeacherBatch:
    """Frames to train on and the random warps for their equivariance terms."""

    images: torch.Tensor
    landmarks: torch.Tensor | None
    jacobians: torch.Tensor | None
    warp: Warp

    def to(self, device: torch.device | str) -> TeacherBatch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TeacherBatch(move(self.images), move(self.landmarks), move(self.jacobians), self.warp.to(device))


# what a derived seed is for: each purpose gets its own independent stream
FRAMES, WARPS = 0, 1


def batch_seed(seed: int, index: int, purpose: int) -> int:
    """A 31-bit seed for batch ``index`` of run ``seed``; every (seed, index, purpose) gets its own."""
    return int(np.random.SeedSequence([seed, index, purpose]).generate_state(1)[0]) >> 1


def teacher_batch_source(options: TeacherTrainOptions, user_frames: Any = None) -> Callable[[int], TeacherBatch]:
    """``batch_at(i)``: the i-th training batch (synthetic frames, or a random draw of user frames)."""
    def batch_at(index: int) -> TeacherBatch:
        generator = torch.Generator().manual_seed(batch_seed(options.seed, index, WARPS))
        warp = random_warp(options.batch, generator, options.warp)
        if user_frames is None:
            frames = synthetic_frames(
                options.batch, split="train", seed=batch_seed(options.seed, index, FRAMES),
                num_kp=options.detector.num_kp, size=options.size,
            )
            return TeacherBatch(frames.images, frames.landmarks, frames.jacobians, warp)
        picks = torch.randint(len(user_frames), (options.batch,), generator=generator)
        return TeacherBatch(user_frames.images[picks], None, None, warp)

    return batch_at


def evaluate_teacher(model: nn.Module, frames: Any, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """Mean landmark error (px), jacobian error and heatmap peak of ``model`` on labelled ``frames``."""
    if frames.landmarks is None:
        raise CompressbenchError("evaluating a teacher against ground truth needs synthetic frames with landmarks")
    out = collect_outputs(model, frames.images, batch_size)
    jacobian = 0.0
    if frames.jacobians is not None and out["jacobian"] is not None:
        jacobian = float(metrics.jacobian_error(out["jacobian"], frames.jacobians))
    return {
        "landmark_error_px": float(metrics.landmark_error_px(out["value"], frames.landmarks, frames.images.shape[-1])),
        "jacobian_error": jacobian,
        "heatmap_peak": float(metrics.heatmap_peak(out["heatmap"])),
    }


def equivariance_error_px(model: nn.Module, images: torch.Tensor, warp: Warp, batch_size: int = EVAL_BATCH) -> float:
    """Mean distance (px) between kp(frame) and T(kp(warped frame)): how equivariant the model is."""
    device = next(model.parameters()).device
    size = images.shape[-1]
    total = 0.0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            part = images[start : start + batch_size].to(device)
            chunk = warp.slice(start, start + part.shape[0]).to(device)
            value = model(part)["value"]
            carried = chunk.points(model(chunk.images(part))["value"])
            total += float(metrics.mean_distance(value, carried)) * part.shape[0] * size / 2
    return total / images.shape[0]


def _synthetic_validation(options: TeacherTrainOptions) -> Callable[[nn.Module], dict[str, float]]:
    frames = synthetic_frames(options.val_frames, split="val", seed=options.seed, num_kp=options.detector.num_kp, size=options.size)
    return lambda model: evaluate_teacher(model, frames)


def _user_validation(options: TeacherTrainOptions, frames: Any) -> Callable[[nn.Module], dict[str, float]]:
    generator = torch.Generator().manual_seed(options.seed + VALIDATION_WARP_SEED_OFFSET)
    warp = random_warp(len(frames), generator, options.warp)
    return lambda model: {"equivariance_px": equivariance_error_px(model, frames.images, warp)}


def _split_user_frames(options: TeacherTrainOptions) -> tuple[Any, Any]:
    """User frames: the last ``val_frames`` are held out for validation, the rest train."""
    frames = load_frames(options.data, size=options.size)
    if len(frames) <= options.val_frames:
        raise CompressbenchError(
            f"--data {options.data} has {len(frames)} frames; training needs more than --val-frames ({options.val_frames})"
        )
    cut = len(frames) - options.val_frames
    return frames.slice(0, cut), frames.slice(cut, len(frames))


def build_initial_teacher(options: TeacherTrainOptions) -> nn.Module:
    """The teacher to train, initialised from ``options.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        return build_teacher(options.detector)


def train_teacher(options: TeacherTrainOptions, model: nn.Module | None = None) -> TrainResult:
    """Train a teacher (``model`` or a fresh one) as ``options`` say; returns it with its best weights."""
    options.validate()
    if model is None:  # a fresh teacher of options.detector: its hourglass must fit the frames
        options.detector.check_input_size(options.size, "--size")
    if options.data == SYNTHETIC:
        batch_at, validate, monitor = teacher_batch_source(options), _synthetic_validation(options), "landmark_error_px"
        weights = options.weights
    else:
        train_frames, val_frames = _split_user_frames(options)
        batch_at, validate, monitor = teacher_batch_source(options, train_frames), _user_validation(options, val_frames), "equivariance_px"
        weights = replace(options.weights, keypoint=0.0, jacobian=0.0)  # no labels: equivariance only
    model = model if model is not None else build_initial_teacher(options)
    schedule = LR_SCHEDULES.get(options.lr_schedule)
    config = TrainConfig(
        steps=options.steps,
        seed=options.seed,
        device=options.device,
        val_every=options.val_every,
        monitor=monitor,
        mode="min",
        patience=options.patience,
        checkpoint=options.out,
        checkpoint_every=options.checkpoint_every,
        lr_scale=lambda step: schedule(step, options.steps),
        meta={
            **options.meta,
            "model": "teacher",
            "detector_config": options.detector.to_dict(),
            "data": options.data,
            "batch": options.batch,
            "lr": options.lr,
            "lr_schedule": options.lr_schedule,
            "loss_weights": {k: float(v) for k, v in vars(weights).items()},
            "warp": {k: float(v) for k, v in vars(options.warp).items()},
            "size": options.size,
        },
        progress=options.progress,
        description=options.description,
    )

    def loss_fn(trained: nn.Module, batch: TeacherBatch):
        return teacher_loss(trained, batch.images, batch.warp, batch.landmarks, batch.jacobians, weights)

    return train(
        model,
        loss_fn,
        lambda parameters: torch.optim.Adam(parameters, lr=options.lr),
        indexed(batch_at),
        validate,
        config,
        resume=options.resume,
    )
