"""``compare()``: the teacher and its compressed variants measured on the same footing.

Every row is measured in this one process: static measures (parameters, MACs, size, peak memory),
fidelity against the teacher on held-out frames, and latency from one interleaved run (teacher,
variant 1, variant 2, ..., rotating the order every round) on the same input batch, so a speed-up
is the ratio of two medians taken under the same machine conditions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import torch
from torch import nn

from compressbench.comparison.breakdown import GroupTimer, side_by_side
from compressbench.comparison.fidelity import collect_outputs, fidelity
from compressbench.comparison.macs import row_macs, stage_key
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import count_params, peak_memory_mb, size_mb
from compressbench.profiling.environment import environment
from compressbench.profiling.health import check_health
from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.records import ComparisonRecord, ComparisonRow
from compressbench.runtimes import RuntimeUnavailable, check_runtime, parse_runtime, prepare
from compressbench.runtimes.base import default_calibration, openmp_policy_note, openmp_wait_policy
from compressbench.runtimes.deployed import DeployedModel, runtime_for

# Eager and another runtime interleaved: each turn is 1 untimed call + this many timed ones, so no
# timed call pays for the switch (the other runtime's weights in cache, its threads still spinning).
# Per-call interleaving put 7 of 24 runners outside 5% of their alone time (-12.7% to +20.7%) on
# an AMD EPYC with AVX-512; turns of 1 + 4 calls left 31 of 36 within 5% and all within 10.2%
# (benchmarks/results/amd-epyc-avx512/runtimes-burst4.md).
RUNTIME_BURST = 4


def _images(frames) -> torch.Tensor:
    images = getattr(frames, "images", frames)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) == 0:
        raise CompressbenchError("compare needs at least one evaluation frame, as an (N, 3, S, S) batch")
    return images.float()


def _timed_batch(images: torch.Tensor, batch: int) -> torch.Tensor:
    """The first ``batch`` evaluation frames (cycled when there are fewer): one fixed input."""
    return images[torch.arange(batch) % len(images)].contiguous()


def _check_arguments(names: list[str], runtime: str, precision: str, warmup: int, repeats: int, batch: int) -> None:
    check_runtime(runtime, precision)
    if repeats <= 0 or batch <= 0 or warmup < 0:
        raise CompressbenchError(
            f"repeats and batch must be positive and warmup >= 0 (got {repeats}, {batch}, {warmup})"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CompressbenchError(f"variant names must be unique; repeated: {', '.join(duplicates)}")


def _static_row(
    name: str, module: nn.Module, variant, example: torch.Tensor, timed: torch.Tensor, floats: dict[tuple, tuple]
) -> ComparisonRow:
    """Parameters, MACs, size and peak memory; ``floats`` maps the chain keys of float rows measured
    so far to (name, MACs), for int8 rows whose float model cannot be rebuilt."""
    macs, note = row_macs(module, variant, example, floats)
    return ComparisonRow(
        variant=name,
        method=getattr(variant, "method", "none") if variant is not None else "none",
        params=count_params(module),
        macs=macs,
        macs_int8=bool(getattr(variant, "int8", False)),
        size_mb=size_mb(module),
        peak_mem_mb=peak_memory_mb(lambda: module(timed)),
        notes=(note,) if note else (),
    )


def compare(
    teacher: nn.Module,
    variants: Sequence,
    eval_frames,
    *,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    runtime: str = "torch",
    batch: int = 1,
    show_progress: bool = True,
    teacher_name: str = "teacher",
    breakdown: bool = True,
    precision: str | None = None,
    calibration: torch.Tensor | None = None,
    keep_runners: dict | None = None,
) -> ComparisonRecord:
    """Measure ``teacher`` and each :class:`compressbench.compression.Variant` of ``variants``.

    ``eval_frames`` is a FrameBatch (or an (N, 3, S, S) tensor) of held-out frames: fidelity
    (``akd_px``, ``jacobian_error``) is each row's outputs against the teacher's on all of them, and
    the first ``batch`` of them are the input every row is timed on. ``runtime`` names a runtime of
    :mod:`compressbench.runtimes` (``"openvino:bf16"`` also gives the precision); ``precision`` is
    ``fp32``, ``bf16`` or ``int8``. Each row runs there (a row the runtime or precision cannot take
    gets a note and no latency), and its fidelity is that runner's outputs against the eager fp32
    teacher. int8 calibrates on ``calibration`` frames (default: synthetic training-split frames,
    never the evaluation frames).
    ``breakdown`` adds the per-module side-by-side table (always PyTorch eager, interleaved too).
    ``keep_runners`` (a dict) receives each row's :class:`~compressbench.runtimes.Prepared` by
    variant name: the very program that was timed, for ``export`` to write.
    Returns the :class:`~compressbench.records.ComparisonRecord` (``.to_json()`` is the file); the
    teacher is the first row.
    """
    images = _images(eval_frames)
    entries = [(teacher_name, teacher.eval(), None)] + [(v.name, v.module.eval(), v) for v in variants]
    runtime, precision = parse_runtime(runtime, precision)
    _check_arguments([e[0] for e in entries], runtime, precision, warmup, repeats, batch)
    example, timed = images[:1], _timed_batch(images, batch)
    eager_fp32 = (runtime, precision) == ("torch", "fp32")
    if precision == "int8" and calibration is None:
        calibration = default_calibration(images)
    with torch_threads(threads) as threads_used:
        health = check_health(threads_used)
        rows: list[ComparisonRow] = []
        floats: dict[tuple, tuple] = {}
        fns: dict[tuple[str, str], Callable[[], object]] = {}
        runs: dict[str, dict] = {}
        with progress_bar("measuring variants", len(entries), show_progress) as advance:
            reference = collect_outputs(teacher, images)
            for name, module, variant in entries:
                row = _static_row(name, module, variant, example, timed, floats)
                notes, precision_used = list(row.notes), None
                runner = module
                try:
                    where = runtime_for(module, runtime)  # a deployed file runs in its own runtime
                    fns[("run", name)] = prepared = prepare(where, module, timed, threads_used, precision, calibration)
                    notes += [prepared.note] if prepared.note else []
                    precision_used = prepared.record.precision_used
                    runs[name] = prepared.record.to_dict()
                    if keep_runners is not None:
                        keep_runners[name] = prepared
                    runner = prepared.outputs if not eager_fp32 else module
                except RuntimeUnavailable as exc:
                    if variant is None:  # the reference: every other row is compared with it, so nothing could be
                        raise CompressbenchError(
                            f"{name}, the model every row is compared with, cannot run on {runtime} {precision}: {exc}"
                        ) from None
                    notes.append(str(exc))
                # fidelity of what actually runs there (e.g. OpenVINO in bf16) against the eager fp32 teacher
                agreement = fidelity(collect_outputs(runner, images), reference, int(images.shape[-1]))
                row = replace(row, notes=tuple(notes), precision=precision_used, akd_px=agreement["akd_px"],
                              akd_px_ci95=agreement["akd_px_ci95"], jacobian_error=agreement["jacobian_error"])
                if not row.macs_int8:
                    floats[stage_key(getattr(variant, "stages", None))] = (row.variant, row.macs)
                rows.append(row)
                advance()
        for name, module, _ in entries:
            if isinstance(module, DeployedModel):
                continue  # a deployed file runs only in its own runtime: no eager breakdown or eager reference
            if breakdown:
                fns[("modules", name)] = GroupTimer(module, timed)
            if not eager_fp32 and (breakdown or name == teacher_name):
                # eager fp32: the per-module breakdown's clean total, and the teacher's the reference
                # every row's speedup_vs_eager_fp32 is taken against, in the same interleaved run
                fns[("torch", name)] = prepare("torch", module, timed, threads_used)
        burst = 1 if eager_fp32 else RUNTIME_BURST
        with progress_bar(f"timing {len(entries)} models interleaved", repeats, show_progress) as advance:
            stats = measure_interleaved(fns, warmup, repeats, lambda _: advance(), burst)
    rows = _with_latency(rows, stats, stats.get(("torch" if not eager_fp32 else "run", teacher_name)))
    notes = [f"{row.variant}: {row.note}" for row in rows if row.note]
    if openmp_policy_note():  # eager is every row's speed-up baseline
        notes.append(openmp_policy_note())
    return ComparisonRecord(
        rows=tuple(rows),
        modules=tuple(_modules(entries, fns, stats, eager_fp32, repeats)) if breakdown else (),
        runs=runs,
        env={
            **environment(threads_used),
            "runtime": runtime,
            "runtime_version": check_runtime(runtime).version(),
            "precision": precision,
            "omp_wait_policy": openmp_wait_policy(),
            "batch": batch,
            "input_shape": list(timed.shape),
            "eval_frames": len(images),
            "image_size": int(images.shape[-1]),
            "warmup": warmup,
            "repeats": repeats,
            "burst": burst,
            "settle": burst > 1,
            "breakdown_runtime": "torch",
        },
        notes=tuple(notes),
        health=health.to_dict(),
    )


def _with_latency(rows: list[ComparisonRow], stats: dict, eager_teacher) -> list[ComparisonRow]:
    """The rows with their latency on the runtime and their speed-ups (None where a row did not run)."""
    teacher = stats.get(("run", rows[0].variant))
    timed = []
    for row in rows:
        s = stats.get(("run", row.variant))
        timed.append(replace(
            row,
            latency=s.summary() if s else None,
            speedup=teacher.median / s.median if s and teacher else None,
            speedup_vs_eager_fp32=eager_teacher.median / s.median if s and eager_teacher else None,
        ))  # fmt: skip
    return timed


def _modules(entries, fns, stats, eager_fp32: bool, repeats: int) -> list[dict]:
    clean = "run" if eager_fp32 else "torch"
    medians = {name: fns[("modules", name)].medians(repeats) for name, _, _ in entries if ("modules", name) in fns}
    totals = {name: stats[(clean, name)].median if (clean, name) in stats else None for name, _, _ in entries if name in medians}
    return side_by_side(medians, totals)
