"""One compress run: apply a chain of methods, then compare every stage with the model it started from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from compressbench.comparison.table import compare
from compressbench.compression import CompressionContext, parse_chain
from compressbench.compression.recover import check_recover_can_change
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.models import check_input_size
from compressbench.provenance import Provenance, Variant, derive, provenance_of
from compressbench.records import ComparisonRecord
from compressbench.runtimes.deployed import DeployedModel


@dataclass(frozen=True)
class CompressRun:
    """The record a compress run reports and the variants it made (the last is the result);
    ``written``: the files saved from it (the final variant, its sidecar, its exports), if any."""

    record: ComparisonRecord
    variants: list[Variant]
    written: tuple[Path, ...] = ()

    @property
    def final(self) -> Variant:
        return self.variants[-1]


def compress_and_compare(
    teacher: nn.Module,
    chain: str | Sequence[str],
    options: list[dict] | None,
    frames: FrameSource,
    *,
    name: str = "teacher",
    provenance: Provenance | None = None,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    runtime: str = "torch",
    precision: str | None = None,
    batch: int = 1,
    show_progress: bool = True,
    before_measure: Callable[[list[Variant]], None] | None = None,
    reference: nn.Module | None = None,
    reference_name: str = "reference",
    keep_runners: dict | None = None,
) -> CompressRun:
    """Compress ``teacher`` with ``chain`` (calibrating on ``frames``' calibration frames), then
    :func:`compare` the teacher and every stage on ``frames``' held-out evaluation frames.
    ``provenance`` is where ``teacher`` came from (default: inferred from the module), so the
    variants can be saved. ``before_measure(variants)`` may check the variants (and raise) before
    the long measurement. ``reference`` (e.g. the original teacher of a saved pruned variant): what
    ``recover`` stages fine-tune towards and what every row, ``teacher`` included, is compared
    with (its row first, named ``reference_name``); default ``teacher`` itself."""
    names = parse_chain(list(chain) if not isinstance(chain, str) else chain)
    if isinstance(teacher, DeployedModel):
        raise CompressbenchError(f"{teacher.path} is a deployed file: it is measured as it is (profile, evaluate, "
                                 "check); compress the model it was exported from")  # fmt: skip
    # a recover that could change nothing is refused before any work (it would train for minutes)
    prior = tuple(s.method for s in provenance.stages) if provenance is not None else ()
    check_recover_can_change(names, teacher, reference, prior)
    check_input_size(teacher, frames.size)
    eval_frames = frames.evaluation()  # fails fast (bad path, too few frames) before compressing
    images = getattr(eval_frames, "images", eval_frames)
    context = CompressionContext(
        calibration_frames=frames.calibration,
        calibration_stream=frames.calibration_at,
        input_shape=(1, *images.shape[1:]),
        seed=seed,
        show_progress=show_progress,
        teacher=reference,  # None: the chain's own input
    )
    if reference is not None:
        check_input_size(reference, frames.size)
    start = provenance if provenance is not None else provenance_of(teacher)
    torch.manual_seed(seed)  # for methods that draw from the global generator (e.g. random init)
    variants = derive(teacher, names, options, context, provenance=start, name=name)
    if before_measure is not None:
        before_measure(variants)
    measured = variants if reference is None else [Variant(name, teacher, start), *variants]
    record = compare(
        teacher if reference is None else reference,
        measured,
        eval_frames,
        threads=threads,
        warmup=warmup,
        repeats=repeats,
        runtime=runtime,
        precision=precision,
        batch=batch,
        show_progress=show_progress,
        teacher_name=name if reference is None else reference_name,
        keep_runners=keep_runners,
    )
    new_stages = variants[-1].stages[len(start.stages) :]
    return CompressRun(
        replace(
            record,
            model=name,
            reference=reference_name if reference is not None else None,
            chain=tuple(names),
            stages=tuple({"method": s.method, "options": s.options, "report": s.report} for s in new_stages),
            prior_stages=tuple({"method": s.method, "options": s.options} for s in start.stages),
            data=frames.data,
            seed=seed,
        ),
        variants,
    )
