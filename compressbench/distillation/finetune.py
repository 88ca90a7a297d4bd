"""The one fine-tuning loop: a student trained to agree with a teacher, behind ``distill`` and the
``recover`` compression stage.

It stands below compression: it needs data, evaluation, the distillation losses and the generic
trainer, never compression or provenance, so the ``recover`` stage can import it, while
:mod:`compressbench.distillation.train` (students built through compression chains, saved through
provenance) sits above compression and imports it too.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import compressbench.metrics as metrics
from compressbench.data import synthetic_frames
from compressbench.data.augment import augment_frames, check_augment
from compressbench.distillation.losses import LOSSES, Distiller, LossWeights
from compressbench.errors import CompressbenchError
from compressbench.evaluation import collect_outputs
from compressbench.progress import progress_bar
from compressbench.registry import Registry
from compressbench.training.distributed import DistContext
from compressbench.training.teacher import LR_SCHEDULES, batch_seed
from compressbench.training.trainer import TrainConfig, TrainResult, indexed, train

EVAL_BATCH = 32
# what a derived seed is for (see compressbench.training.teacher.batch_seed); 0 and 1 are teacher training's
DISTILL_FRAMES, ADAPTER_INIT, POOL_FRAMES, AUGMENT_DRAWS, POOL_AUGMENT_DRAWS = 2, 3, 4, 5, 6
# where augmentation happens: "batch" augments every batch and has the teacher label it in the step;
# "pool" augments each pool once when it is drawn and labels it once, so a step costs what a fixed
# pool's step costs plus the pool's labelling spread over the steps between refreshes
AUGMENT_PER = ("batch", "pool")
POOL_CHUNK = 32  # frames made and labelled at a time while filling a pool


@dataclass(frozen=True)
class FinetuneSettings:
    """How one student is fine-tuned against one teacher: what :func:`finetune` needs, shared by
    :func:`~compressbench.distillation.train.distill` and the ``recover`` compression stage."""

    steps: int = 300
    batch: int = 16
    lr: float = 5e-4
    lr_schedule: str = "cosine"
    warmup: int = 0  # steps over which the lr rises linearly to the schedule's value (0: none)
    loss: str = "l1"
    weights: LossWeights = LossWeights()
    # NHWC activations and weights: oneDNN's convolutions (forward and backward) run 1.4-1.6x faster
    # on x86 CPUs than in NCHW; the math is the same, so it changes only the float summation order
    channels_last: bool = False
    precision: str = "fp32"  # "bf16": the student's forward and backward under bf16 autocast (losses in fp32)
    pool: int = 0  # > 0: label this many training frames with the teacher once and draw batches from them
    # augment each training batch (compressbench.data.augment.AUGMENTS); the teacher labels every
    # augmented batch, so the labels are its outputs for exactly those frames (one teacher forward per step)
    augment: str = "none"
    augment_per: str = "batch"  # "pool": each pool augmented and labelled once (AUGMENT_PER)
    refresh: int = 0  # > 0: every this many steps the pool is replaced by the next `pool` training frames
    seed: int = 0
    device: str = "cpu"
    val_every: int = 100
    patience: int | None = 5
    size: int = 256
    progress: bool = True
    checkpoint: Path | None = None
    resume: Path | None = None
    meta: dict = field(default_factory=dict)
    description: str = "fine-tuning"
    label: str = "student"  # how errors name the student


# the dtype the student's forward and backward run in (below fp32: under autocast)
TRAINING_PRECISIONS: Registry[torch.dtype] = Registry("training precision")
TRAINING_PRECISIONS.register("fp32", torch.float32)
TRAINING_PRECISIONS.register("bf16", torch.bfloat16)


def _frame_images(frames: Any) -> torch.Tensor | None:
    """A FrameBatch or an (N, 3, S, S) tensor -> the tensor (None stays None: synthetic frames)."""
    return getattr(frames, "images", frames)


def augmented(settings: FinetuneSettings, images: torch.Tensor, index: int) -> torch.Tensor:
    """Training batch ``index``'s frames (floats in [0, 1]) augmented as ``settings.augment`` says,
    with draws of their own seed (so the frames drawn do not depend on the augmentation)."""
    if settings.augment == "none":
        return images
    generator = torch.Generator().manual_seed(batch_seed(settings.seed, index, AUGMENT_DRAWS))
    return augment_frames(images, settings.augment, generator)


def augmented_pool(settings: FinetuneSettings, frames: torch.Tensor, refresh: int) -> torch.Tensor:
    """Pool ``refresh``'s frames (uint8) augmented once as ``settings.augment`` says, back to uint8 (the
    frames the teacher labels are the frames the student sees), chunk by chunk with one seed per pool."""
    generator = torch.Generator().manual_seed(batch_seed(settings.seed, refresh, POOL_AUGMENT_DRAWS))
    return torch.cat([
        _as_uint8(augment_frames(frames[first : first + POOL_CHUNK].float() / 255.0, settings.augment, generator))
        for first in range(0, len(frames), POOL_CHUNK)
    ])  # fmt: skip


def labels_in_step(settings: FinetuneSettings) -> bool:
    """Whether every training step runs the teacher on its batch (no pool, or augmented per batch)."""
    return not settings.pool or (settings.augment != "none" and settings.augment_per == "batch")


def _batch_source(settings: FinetuneSettings, images: torch.Tensor | None) -> Callable[[int], torch.Tensor]:
    def frames_at(index: int) -> torch.Tensor:
        seed = batch_seed(settings.seed, index, DISTILL_FRAMES)
        if images is None:
            return synthetic_frames(settings.batch, split="train", seed=seed, size=settings.size).images
        generator = torch.Generator().manual_seed(seed)
        picks = torch.randint(len(images), (settings.batch,), generator=generator)
        return images[picks].float()

    return lambda index: augmented(settings, frames_at(index), index)


@dataclass
class LabelledPool:
    """Training frames (stored as 8-bit, as frames on disk are) with the teacher's outputs for them."""

    images: torch.Tensor  # uint8, N x 3 x H x W
    targets: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, picks: torch.Tensor) -> dict:
        return {"images": self.images[picks].float() / 255.0, "targets": {k: v[picks] for k, v in self.targets.items()}}


def _as_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images
    return (images.clamp(0, 1) * 255.0).round().to(torch.uint8)


def _pool_images(settings: FinetuneSettings, images: torch.Tensor | None, first: int, count: int) -> torch.Tensor:
    if images is None:
        seed = batch_seed(settings.seed, first // POOL_CHUNK, POOL_FRAMES)
        return _as_uint8(synthetic_frames(count, split="train", seed=seed, size=settings.size).images)
    return _as_uint8(images[first : first + count])


def label_pool(distiller: Distiller, settings: FinetuneSettings, images: torch.Tensor | None) -> LabelledPool:
    """Make (or take from the given training frames) ``settings.pool`` frames and run the teacher on
    them once. Offline distillation: each step then costs only the student's forward and backward,
    which for a small student is several times cheaper than the teacher's forward."""
    if images is not None and settings.pool > len(images):
        raise CompressbenchError(
            f"--pool {settings.pool} asks for more frames than the {len(images)} training frames given"
        )
    device = next(distiller.teacher.parameters()).device
    chunks, targets = [], {}
    with progress_bar("labelling the pool with the teacher", settings.pool, enabled=settings.progress) as advance:
        for first in range(0, settings.pool, POOL_CHUNK):
            count = min(POOL_CHUNK, settings.pool - first)
            chunk = _pool_images(settings, images, first, count)
            labels = distiller.teacher_targets(chunk.to(device).float() / 255.0)
            chunks.append(chunk)
            for key, value in labels.items():
                targets.setdefault(key, []).append(value.detach().cpu())
            advance(count)
    return LabelledPool(torch.cat(chunks), {key: torch.cat(parts) for key, parts in targets.items()})


def _pool_source(settings: FinetuneSettings, pool: LabelledPool) -> Callable[[int], dict]:
    def batch_at(index: int) -> dict:
        generator = torch.Generator().manual_seed(batch_seed(settings.seed, index, DISTILL_FRAMES))
        return pool.batch(torch.randint(len(pool), (settings.batch,), generator=generator))

    return batch_at


PoolReader = Callable[[int, int], torch.Tensor]  # (position, count) -> training frames there (fewer at the end)


def _synthetic_reader(settings: FinetuneSettings) -> PoolReader:
    """The endless synthetic stream :func:`label_pool` fills a pool from (chunk by chunk), at any position."""

    def read(position: int, count: int) -> torch.Tensor:
        first, last = position // POOL_CHUNK, (position + count - 1) // POOL_CHUNK
        chunks = [_pool_images(settings, None, chunk * POOL_CHUNK, POOL_CHUNK) for chunk in range(first, last + 1)]
        offset = position - first * POOL_CHUNK
        return torch.cat(chunks)[offset : offset + count]

    return read


class RefreshingPool:
    """The pools of one run that refreshes its pool: pool r holds the ``size`` frames that follow pool
    r - 1's in a stream of training frames (pool 0 is the fixed pool of a run without refresh); at the
    stream's end it wraps round to the stream's first frame. Pools are read in order and only the
    current one is held, so a run streams through many more frames than it holds."""

    def __init__(self, read: PoolReader, size: int, first: torch.Tensor):
        self.read, self.size = read, size
        self.index, self.images = 0, _as_uint8(first[:size])
        self.position = size  # where the next pool starts in the stream
        self.length: int | None = None  # frames the stream holds, once its end is seen
        self.frames_read = size

    @property
    def distinct(self) -> int:
        """Distinct frames the pools so far held."""
        return self.frames_read if self.length is None else min(self.frames_read, self.length)

    def at(self, refresh: int) -> torch.Tensor:
        """Pool ``refresh`` (uint8, size x 3 x H x W)."""
        if refresh < self.index:  # only a restart goes back: read the stream again from its start
            self.index, self.position = -1, 0
        while self.index < refresh:
            self.images, self.index = self._next(), self.index + 1
        return self.images

    def _next(self) -> torch.Tensor:
        pieces, need = [], self.size
        while need:
            got = self.read(self.position, need)
            if len(got):
                pieces.append(_as_uint8(got))
            self.position, need = self.position + len(got), need - len(got)
            if need:  # the stream ends here
                if self.position == 0:
                    raise CompressbenchError("the training-frame stream gave no frames to refresh the pool from")
                self.length, self.position = self.position, 0
        self.frames_read += self.size
        return torch.cat(pieces)


def _fresh_source(
    distiller: Distiller, settings: FinetuneSettings, images: torch.Tensor | None, read: PoolReader | None, pools: dict | None
) -> Callable[[int], dict]:
    """Batches from a pool that is augmented and labelled by the teacher batch by batch, or refreshed
    every ``settings.refresh`` steps (labelled once per refresh unless augmented per batch), or both;
    with ``augment_per="pool"`` each pool is augmented once and labelled once. Batch i picks the same
    frames of its pool as :func:`_pool_source` would, so pool 0 unaugmented is the fixed pool's run."""
    if read is None:
        read = _synthetic_reader(settings) if images is None else (lambda position, count: images[position : position + count])
    first = images[: settings.pool] if images is not None else read(0, settings.pool)
    if len(first) < settings.pool:
        raise CompressbenchError(f"--pool {settings.pool} asks for more frames than the {len(first)} training frames given")
    stream = RefreshingPool(read, settings.pool, first)
    device = next(distiller.teacher.parameters()).device
    layout = torch.channels_last if settings.channels_last else torch.contiguous_format
    quiet = replace(settings, progress=False)  # labelling inside training: one live progress bar at a time
    labelled: dict[int, LabelledPool] = {}
    per_batch = labels_in_step(settings)
    key = (settings.loss, settings.pool) if settings.augment == "none" else (settings.loss, settings.pool, settings.augment)

    def labels(refresh: int, frames: torch.Tensor) -> LabelledPool:
        if refresh not in labelled:
            cached = pools.get(key) if pools is not None and refresh == 0 else None
            labelled.clear()
            if cached is None:
                shown = augmented_pool(settings, frames, refresh) if settings.augment != "none" else frames
                cached = label_pool(distiller, quiet if refresh else settings, shown)
            labelled[refresh] = cached
            if pools is not None and refresh == 0:
                pools[key] = labelled[refresh]
        return labelled[refresh]

    if not per_batch:
        labels(0, stream.images)  # before training starts, with its own progress bar

    def batch_at(index: int) -> dict:
        refresh = index // settings.refresh if settings.refresh else 0
        frames = stream.at(refresh)
        generator = torch.Generator().manual_seed(batch_seed(settings.seed, index, DISTILL_FRAMES))
        picks = torch.randint(len(frames), (settings.batch,), generator=generator)
        if not per_batch:
            return labels(refresh, frames).batch(picks)
        batch = augmented(settings, frames[picks].to(device).float() / 255.0, index)  # where the teacher runs
        return {"images": batch, "targets": distiller.teacher_targets(batch.contiguous(memory_format=layout))}

    return batch_at


def warmup_factor(step: int, warmup: int) -> float:
    """The factor on the lr at ``step`` (0-based) during a linear warm-up of ``warmup`` steps: 1/warmup
    at the first step, 1 from step ``warmup - 1`` on. Adam's first updates after a fresh start are
    full-size whatever the gradients' scale; a warm-up keeps them from jolting weights that are
    already good (a recover round that continues an earlier one)."""
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


def follow_device(module: nn.Module, device: torch.device) -> None:
    """Move ``module`` to ``device`` unless it is already there."""
    first = next(module.parameters(), None)
    if first is not None and first.device != device:
        module.to(device)


def agreement(student: nn.Module, teacher: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """AKD (px) and jacobian error of ``student`` against ``teacher`` on ``images``."""
    keys = ("value", "jacobian")
    s, t = collect_outputs(student, images, batch_size, keys), collect_outputs(teacher, images, batch_size, keys)
    jacobian = metrics.jacobian_error(s["jacobian"], t["jacobian"]) if s["jacobian"] is not None and t["jacobian"] is not None else 0.0
    return {"akd_px": float(metrics.akd_px(s["value"], t["value"], images.shape[-1])), "jacobian_error": float(jacobian)}


def check_runs(student: nn.Module, example: torch.Tensor, label: str, batch: int = 2) -> None:
    """Fail with one sentence (not a traceback mid-training) when the student cannot take the frames,
    in eval mode or in training mode at ``batch`` frames per step (BatchNorm needs more than one
    value per channel to train, which one frame at a 1x1 bottleneck does not give)."""
    size = example.shape[-1]
    probe = copy.deepcopy(student)  # a training-mode forward updates BatchNorm statistics
    for training, frames in ((False, example), (True, example.expand(batch, *example.shape[1:]))):
        probe.train(training)
        try:
            with torch.no_grad():
                probe(frames)
        except (RuntimeError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if training and "more than 1 value per channel" in detail:
                raise CompressbenchError(
                    f"--batch {batch} cannot train {label}: a BatchNorm layer sees a 1x1 map there and needs "
                    "more than one value per channel per step; use --batch 2 or more"
                ) from None
            raise CompressbenchError(
                f"student {label} cannot run on {size}x{size} frames ({detail}); use 256x256 frames or another student"
            ) from None


@dataclass(frozen=True)
class StepCost:
    """What :func:`finetune` will cost, measured before it runs: seconds per training step (the
    student's forward, loss, backward and Adam step, plus the teacher's labelling where every batch is
    labelled in the step), seconds to label one pool, seconds per validation."""

    step_s: float
    pool_s: float
    validation_s: float


def step_cost(
    student: nn.Module, teacher: nn.Module, settings: FinetuneSettings, images: torch.Tensor, val_frames: int = 64, repeats: int = 3
) -> StepCost:
    """Time what :func:`finetune` does per step on a copy of ``student`` (``images``: at least
    ``settings.batch`` frames at the training size): one untimed step, then the median of
    ``repeats``; a validation runs ``val_frames`` frames through student and teacher. Training time
    does not depend on the weights, so an untrained skeleton gives its trained self's cost, and a
    search can plan its training before any of it runs."""
    compute_dtype = TRAINING_PRECISIONS.get(settings.precision)
    layout = torch.channels_last if settings.channels_last else torch.contiguous_format
    batch = images[: settings.batch].float()
    if len(batch) < settings.batch:
        raise CompressbenchError(f"step_cost needs {settings.batch} frames (one batch), got {len(batch)}")
    probe = copy.deepcopy(student).cpu().train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        distiller = Distiller(teacher, probe, settings.loss, settings.weights, example=batch[:1])
    probe.to(memory_format=layout)
    optimizer = torch.optim.Adam(distiller.parameters(), lr=settings.lr)
    labelled_in_step = labels_in_step(settings)

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    def label() -> dict:
        with torch.no_grad():
            return distiller.teacher_targets(batch)

    def step() -> None:
        targets = label() if labelled_in_step else fixed
        autocast = torch.autocast("cpu", dtype=compute_dtype) if compute_dtype != torch.float32 else contextlib.nullcontext()
        with autocast:
            loss, _ = distiller(batch.contiguous(memory_format=layout), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def validation() -> None:
        with torch.no_grad():
            probe.eval()
            probe(batch)
            probe.train()

    try:
        fixed = label()
        label_s = statistics.median(timed(label) for _ in range(repeats))
        timed(step)
        step_s = statistics.median(timed(step) for _ in range(repeats))
        validation_s = statistics.median(timed(validation) for _ in range(repeats)) + label_s
    finally:
        distiller.release_taps()
    batches_per_pool = math.ceil(settings.pool / settings.batch) if settings.pool else 0
    batches_per_validation = math.ceil(val_frames / settings.batch)
    return StepCost(step_s=step_s, pool_s=batches_per_pool * label_s, validation_s=batches_per_validation * validation_s)


def training_step_s(cost: StepCost, settings: FinetuneSettings) -> float:
    """Seconds per training step with a refreshed pool's labelling spread over its steps (none where
    every step labels its own batch, which ``cost.step_s`` already holds)."""
    refresh = settings.refresh if not labels_in_step(settings) else 0
    return cost.step_s + (cost.pool_s / refresh if refresh else 0.0)


def finetune(
    student: nn.Module,
    teacher: nn.Module,
    settings: FinetuneSettings,
    val_images: torch.Tensor,
    train_frames: Any = None,
    pools: dict | None = None,
    pool_frames: PoolReader | None = None,
) -> TrainResult:
    """Fine-tune ``student`` (in place) to agree with ``teacher``: the one training loop behind
    :func:`~compressbench.distillation.train.distill` and the ``recover`` compression stage.

    ``train_frames`` (a FrameBatch or an (N, 3, S, S) tensor, float in [0, 1] or uint8) are the
    frames the teacher labels; None draws synthetic training frames from the seed. ``val_images``
    decide the best weights and early stopping (validation AKD); they must not be evaluation frames.
    The teacher is neither trained nor moved back; the returned result's ``model`` is the Distiller
    whose ``student`` holds the best weights, on ``settings.device``. ``pools``: labelled pools kept
    by (loss, pool size) for the next call with the same teacher and training frames (the caller
    keys the dict by those), so repeated fine-tuning labels its pool once. ``settings.augment``
    augments every batch and has the teacher label it (``augment_per="pool"``: each pool once,
    labelled once); ``settings.refresh`` replaces the pool every
    so many steps with the next training frames, read from ``pool_frames`` (position, count) -> the
    frames at that position of the stream ``train_frames`` starts (fewer at its end; None: from
    ``train_frames`` themselves, or the synthetic stream)."""
    LOSSES.get(settings.loss)
    check_augment(settings.augment)
    if settings.augment_per not in AUGMENT_PER:
        raise CompressbenchError(f"unknown augment_per {settings.augment_per!r}; choose one of: {', '.join(AUGMENT_PER)}")
    if settings.augment_per == "pool" and settings.augment != "none" and not settings.pool:
        raise CompressbenchError("augment_per=pool needs a pool (pool > 0) to augment")
    if settings.refresh < 0:
        raise CompressbenchError(f"refresh must be zero (one fixed pool) or positive, got {settings.refresh}")
    if settings.refresh and not settings.pool:
        raise CompressbenchError("refresh needs a pool (pool > 0); without one every batch is fresh frames already")
    compute_dtype = TRAINING_PRECISIONS.get(settings.precision)
    schedule = LR_SCHEDULES.get(settings.lr_schedule)
    train_images = _frame_images(train_frames)
    check_runs(student, val_images[:1], settings.label, settings.batch)
    with torch.random.fork_rng(devices=[]):  # the L3 adapter's initial weights come from the seed
        torch.manual_seed(batch_seed(settings.seed, 0, ADAPTER_INIT))
        distiller = Distiller(teacher, student, settings.loss, settings.weights, example=val_images[:1])
    layout = torch.channels_last if settings.channels_last else torch.contiguous_format
    student.to(memory_format=layout)  # before the optimizer is made: its state follows the parameters
    if settings.pool and (settings.augment != "none" or settings.refresh):
        batches = _fresh_source(distiller, settings, train_images, pool_frames, pools)
    elif settings.pool:
        key = (settings.loss, settings.pool)
        pool = pools.get(key) if pools is not None else None
        if pool is None:
            pool = label_pool(distiller, settings, train_images)
            if pools is not None:
                pools[key] = pool
        batches = _pool_source(settings, pool)
    else:
        batches = _batch_source(settings, train_images)
    config = TrainConfig(
        steps=settings.steps,
        seed=settings.seed,
        device=settings.device,
        val_every=settings.val_every,
        monitor="akd_px",
        mode="min",
        patience=settings.patience,
        checkpoint=settings.checkpoint,
        meta=dict(settings.meta),
        progress=settings.progress,
        description=settings.description,
        lr_scale=lambda step: schedule(step, settings.steps) * warmup_factor(step, settings.warmup),
    )

    # The teacher is outside the module tree, so the trainer does not move it: it follows the
    # batches (under torchrun each rank has its own device, known only inside the trainer).
    def loss_fn(model: nn.Module, batch: torch.Tensor | dict):
        images = batch["images"] if isinstance(batch, dict) else batch
        targets = batch["targets"] if isinstance(batch, dict) else None  # a pool batch brings the teacher's outputs
        if targets is None:
            follow_device(teacher, images.device)
            targets = DistContext.unwrap(model).teacher_targets(images)  # in fp32, outside autocast
        autocast = torch.autocast(images.device.type, dtype=compute_dtype) if compute_dtype != torch.float32 else contextlib.nullcontext()
        with autocast:
            return model(images.contiguous(memory_format=layout), targets)

    def validate(model: nn.Module) -> dict[str, float]:
        inner = DistContext.unwrap(model)
        follow_device(teacher, next(inner.student.parameters()).device)
        return agreement(inner.student, teacher, val_images)

    try:
        result = train(
            distiller,
            loss_fn,
            lambda parameters: torch.optim.Adam(parameters, lr=settings.lr),
            indexed(batches),
            validate,
            config,
            resume=settings.resume,
        )
    finally:
        distiller.release_taps()
        student.to(memory_format=torch.contiguous_format)  # it leaves as it came: measured in NCHW
    return result


__all__ = [
    "AUGMENT_PER",
    "FinetuneSettings",
    "LabelledPool",
    "RefreshingPool",
    "StepCost",
    "agreement",
    "augmented",
    "augmented_pool",
    "check_runs",
    "finetune",
    "label_pool",
    "labels_in_step",
    "step_cost",
    "training_step_s",
    "warmup_factor",
]
