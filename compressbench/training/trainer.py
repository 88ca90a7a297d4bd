"""A small, generic training loop: validation, early stopping, exact resume, torchrun/DDP.

The loop knows nothing about keypoints. It takes

- a ``model`` (an ``nn.Module``),
- ``loss_fn(model, batch) -> (loss, {name: float})``,
- ``optimizer_factory(parameters) -> torch.optim.Optimizer``,
- ``batches``: an endless iterator of batches, or a :data:`BatchSource` ``(first, stride) -> iterator``
  that can start anywhere (cheaper to resume and to shard),
- ``validate(model) -> {name: float}`` with ``config.monitor`` among the names,

and trains for ``config.steps`` steps. Everything random is seeded from ``config.seed``, and a
checkpoint holds all the state there is (weights, optimizer, step, random states, best metric), so a
run of N steps and a run of N/2 steps resumed for N/2 more end with bit-identical weights.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

import numpy as np
import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.models.checkpoint import FOMM_KEY
from compressbench.progress import progress_bar
from compressbench.training.checkpoints import (
    capture_rng,
    cpu_state_dict,
    load_training_checkpoint,
    restore_rng,
    save_checkpoint,
)
from compressbench.training.distributed import DistContext, setup

LossFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
Validate = Callable[[nn.Module], "dict[str, float]"]
# (first global batch index, stride) -> the endless iterator of batches first, first+stride, ...
BatchSource = Callable[[int, int], Iterator[Any]]
MODES = ("min", "max")


@dataclass(frozen=True)
class TrainConfig:
    """How long to train, when to validate and stop, where to write checkpoints."""

    steps: int
    seed: int = 0
    device: str = "cpu"
    val_every: int = 100
    monitor: str = "loss"
    mode: str = "min"  # "min": lower is better; "max": higher is better
    patience: int | None = None  # validations without improvement before stopping; None: never
    checkpoint: str | Path | None = None  # written at every validation, every checkpoint_every steps, and at the end
    checkpoint_every: int | None = None  # extra checkpoints between validations (they change no result)
    lr_scale: Callable[[int], float] | None = None  # step -> factor on every group's initial lr
    meta: dict = field(default_factory=dict)  # plain values, stored in the checkpoint
    progress: bool = True
    description: str = "training"

    def __post_init__(self) -> None:
        for name in ("steps", "val_every", "checkpoint_every"):
            value = getattr(self, name)
            if name == "checkpoint_every" and value is None:
                continue
            if not isinstance(value, int) or value <= 0:
                raise CompressbenchError(f"{name} must be a positive integer, got {value!r}")
        if self.patience is not None and self.patience <= 0:
            raise CompressbenchError(f"patience must be a positive integer or None, got {self.patience!r}")
        if self.mode not in MODES:
            raise CompressbenchError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


@dataclass
class TrainResult:
    """What a run produced; ``model`` holds the best weights (by the monitored metric)."""

    model: nn.Module
    step: int
    best_value: float | None
    best_step: int
    stopped_early: bool
    history: list[dict[str, float]]
    checkpoint: Path | None
    seconds: float


@dataclass
class _State:
    step: int = 0
    best_value: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    earlier_seconds: float = 0.0  # training time of the runs this one resumes
    resumed_at: list[int] = field(default_factory=list)  # steps at which earlier runs were resumed
    # training loss summed since the last validation (what the next history row reports)
    loss_sum: float = 0.0
    loss_count: int = 0


def indexed(batch_at: Callable[[int], Any]) -> BatchSource:
    """A :data:`BatchSource` from ``batch_at(i)``, the batch with global index ``i``."""
    return lambda first, stride: (batch_at(index) for index in itertools.count(first, stride))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's and Python's global generators."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def train(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer_factory: OptimizerFactory,
    batches: Union[Iterable[Any], BatchSource],
    validate: Validate,
    config: TrainConfig,
    resume: str | Path | None = None,
) -> TrainResult:
    """Train ``model`` in place; return it with its best weights loaded (see the module doc)."""
    ctx = setup(config.device)
    try:
        result = _run(ctx, model, loss_fn, optimizer_factory, batches, validate, config, resume)
    except BaseException:
        ctx.teardown(clean=False)
        raise
    ctx.teardown()
    return result


def _run(ctx: DistContext, model, loss_fn, optimizer_factory, batches, validate, config, resume) -> TrainResult:
    started = time.perf_counter()
    seed_everything(config.seed + ctx.rank)
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    model.to(ctx.device)
    optimizer = optimizer_factory(model.parameters())
    initial_lrs = [group["lr"] for group in optimizer.param_groups]
    state = _resume(resume, model, optimizer, ctx, config) if resume is not None else _State()
    trained = ctx.wrap(model)
    stream = _open(batches, state.step * ctx.world_size + ctx.rank, ctx.world_size)
    shown: dict[str, float] = {}
    stopped_early = False
    first_step = state.step
    with progress_bar(config.description, config.steps - first_step, enabled=config.progress and ctx.is_main) as advance:
        while state.step < config.steps and not stopped_early:
            if config.lr_scale is not None:
                factor = config.lr_scale(state.step)
                for group, lr in zip(optimizer.param_groups, initial_lrs):
                    group["lr"] = lr * factor
            trained.train()
            loss, _ = loss_fn(trained, _to_device(next(stream), ctx.device))
            value = ctx.mean(loss.item())  # every rank sees the same value, so all of them stop together
            if not math.isfinite(value):
                raise CompressbenchError(f"training diverged at step {state.step + 1} (loss {value}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state.step += 1
            state.loss_sum, state.loss_count = state.loss_sum + value, state.loss_count + 1
            mean_loss = state.loss_sum / state.loss_count
            validating = state.step % config.val_every == 0 or state.step == config.steps
            if validating:
                metrics = _validate(ctx, model, validate, config)
                stopped_early = _record(state, model, metrics, mean_loss, config)
                state.loss_sum, state.loss_count = 0.0, 0
                if config.progress and ctx.is_main:  # one line per validation: a log that survives the bar
                    _log(state.history[-1], config.steps, time.perf_counter() - started)
                shown = {"val": metrics[config.monitor]}
            extra = config.checkpoint_every is not None and state.step % config.checkpoint_every == 0
            if config.checkpoint is not None and (validating or extra):
                _write(ctx, config, state, model, optimizer, time.perf_counter() - started)
            rate = (state.step - first_step) / max(time.perf_counter() - started, 1e-9)
            advance(loss=mean_loss, **shown, steps_per_s=rate)
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return TrainResult(
        model=model,
        step=state.step,
        best_value=state.best_value,
        best_step=state.best_step,
        stopped_early=stopped_early,
        history=state.history,
        checkpoint=Path(config.checkpoint) if config.checkpoint is not None else None,
        seconds=time.perf_counter() - started,
    )


def _log(row: dict[str, float], steps: int, seconds: float) -> None:
    values = "  ".join(f"{key}={value:.4g}" for key, value in row.items() if key != "step")
    print(f"step {row['step']}/{steps}  {values}  ({seconds:.0f} s)", file=sys.stderr, flush=True)


def _open(batches, first: int, stride: int) -> Iterator[Any]:
    """This rank's batches from global index ``first`` on, every ``stride``-th one."""
    if callable(batches) and not hasattr(batches, "__iter__"):
        return iter(batches(first, stride))
    return itertools.islice(iter(batches), first, None, stride)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(item, device) for key, item in batch.items()}
    return batch.to(device) if hasattr(batch, "to") else batch


def _validate(ctx: DistContext, model: nn.Module, validate: Validate, config: TrainConfig) -> dict[str, float]:
    """Rank 0 validates (its BatchNorm statistics are the ones DDP broadcasts); everyone gets the result.

    Random states are put back afterwards so validation never changes what training draws next.
    """
    metrics = None
    if ctx.is_main:
        rng = capture_rng()
        model.eval()
        with torch.no_grad():
            metrics = {name: float(value) for name, value in validate(model).items()}
        restore_rng(rng)
        if config.monitor not in metrics:
            known = ", ".join(sorted(metrics)) or "(none)"
            raise CompressbenchError(f"validation reports no metric {config.monitor!r} to monitor; it reports: {known}")
    return ctx.broadcast(metrics)


def _record(state: _State, model: nn.Module, metrics: dict[str, float], loss: float, config: TrainConfig) -> bool:
    """Note a validation; keep the weights if they are the best so far. True means stop early."""
    value = metrics[config.monitor]
    state.history.append({"step": state.step, "loss": loss, **metrics})
    if math.isnan(value):
        improved = False
    elif state.best_value is None:
        improved = True
    else:
        improved = value < state.best_value if config.mode == "min" else value > state.best_value
    if improved:
        state.best_value, state.best_step, state.bad_validations = value, state.step, 0
        state.best_weights = cpu_state_dict(model)
    else:
        state.bad_validations += 1
    return config.patience is not None and state.bad_validations >= config.patience


def _write(ctx: DistContext, config: TrainConfig, state: _State, model: nn.Module, optimizer, seconds: float) -> None:
    rng = ctx.gather(capture_rng())  # every rank takes part; only rank 0 writes
    if not ctx.is_main:
        return
    last = cpu_state_dict(model)
    payload = {
        FOMM_KEY: state.best_weights if state.best_weights is not None else last,
        "last": last,
        "optimizer": optimizer.state_dict(),
        "step": state.step,
        "rng": rng,
        "best": {
            "metric": config.monitor,
            "mode": config.mode,
            "value": state.best_value,
            "step": state.best_step,
            "bad_validations": state.bad_validations,
        },
        "history": state.history,
        "running_loss": {"sum": state.loss_sum, "count": state.loss_count},
        "meta": {
            **config.meta,
            "seed": config.seed,
            "steps_target": config.steps,
            "world_size": ctx.world_size,
            "torch": str(torch.__version__),
            "train_seconds": round(state.earlier_seconds + seconds, 1),
            "resumed_at": state.resumed_at,
        },
    }
    save_checkpoint(config.checkpoint, payload)


def _resume(path, model: nn.Module, optimizer, ctx: DistContext, config: TrainConfig) -> _State:
    payload = load_training_checkpoint(path)
    step = int(payload["step"])
    if step >= config.steps:
        raise CompressbenchError(f"checkpoint {path} is already at step {step}; ask for more than {step} steps to resume")
    rng = payload["rng"]
    if len(rng) != ctx.world_size:
        raise CompressbenchError(
            f"checkpoint {path} was written by {len(rng)} process(es); resume it with the same number, "
            f"not {ctx.world_size}"
        )
    best = payload["best"]
    if best.get("metric") != config.monitor:
        raise CompressbenchError(
            f"checkpoint {path} monitored {best.get('metric')!r}, this run monitors {config.monitor!r}; they must match"
        )
    model.load_state_dict(payload["last"])
    optimizer.load_state_dict(payload["optimizer"])
    restore_rng(rng[ctx.rank])
    return _State(
        step=step,
        best_value=best["value"],
        best_step=int(best["step"]),
        bad_validations=int(best["bad_validations"]),
        best_weights=payload[FOMM_KEY] if best["value"] is not None else None,
        history=list(payload.get("history", [])),
        earlier_seconds=float(payload["meta"].get("train_seconds", 0.0)),
        resumed_at=[*payload["meta"].get("resumed_at", []), step],
        loss_sum=float(payload.get("running_loss", {}).get("sum", 0.0)),
        loss_count=int(payload.get("running_loss", {}).get("count", 0)),
    )
