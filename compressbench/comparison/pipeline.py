"""One compress run: apply a chain of methods, then compare every stage with the teacher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from compressbench.comparison.frames import FrameSource
from compressbench.comparison.table import compare
from compressbench.compression import CompressionContext, Variant, compress, parse_chain


@dataclass
class Origin:
    """What a chain starts from, so its variants can be saved: a registered model and its config
    (``base``) plus the stages already applied when the start is itself a saved variant."""

    base: dict = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)


@dataclass
class CompressRun:
    """The record a compress run reports and the variants it made (the last is the result)."""

    record: dict
    variants: list[Variant]


def compress_and_compare(
    teacher: nn.Module,
    chain: str | Sequence[str],
    options: list[dict] | None,
    frames: FrameSource,
    *,
    name: str = "teacher",
    origin: Origin | None = None,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    runtime: str = "torch",
    batch: int = 1,
    show_progress: bool = True,
    before_measure: Callable[[list[Variant]], None] | None = None,
) -> CompressRun:
    """Compress ``teacher`` with ``chain`` (calibrating on ``frames``' calibration frames), then
    :func:`compare` the teacher and every stage on ``frames``' held-out evaluation frames.
    ``before_measure(variants)`` may check the variants (and raise) before the long measurement."""
    names = parse_chain(list(chain) if not isinstance(chain, str) else chain)
    eval_frames = frames.evaluation()  # fails fast (bad path, too few frames) before compressing
    images = getattr(eval_frames, "images", eval_frames)
    context = CompressionContext(
        calibration_frames=frames.calibration,
        input_shape=(1, *images.shape[1:]),
        seed=seed,
        show_progress=show_progress,
    )
    origin = origin or Origin()
    torch.manual_seed(seed)  # for methods that draw from the global generator (e.g. random init)
    variants = compress(teacher, names, options, context, base=origin.base, name=name)
    for variant in variants:  # a saved variant compressed further keeps its whole history
        variant.stages = [dict(stage) for stage in origin.stages] + variant.stages
    if before_measure is not None:
        before_measure(variants)
    record = compare(
        teacher,
        variants,
        eval_frames,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        runtime=runtime,
        batch=batch,
        show_progress=show_progress,
        teacher_name=name,
    )
    final = variants[-1]
    new_stages = final.stages[len(origin.stages) :]
    return CompressRun(
        {
            "model": name,
            "chain": names,
            "stages": [{k: stage.get(k) for k in ("method", "options", "report")} for stage in new_stages],
            "prior_stages": [{k: stage.get(k) for k in ("method", "options")} for stage in origin.stages],
            "data": frames.data,
            "seed": seed,
            **record,
        },
        variants,
    )
