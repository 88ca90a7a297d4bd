"""The Python API: everything the command line does, with defaults, callable from Python.

```python
import compressbench

teacher = compressbench.load_model("teacher")
run = compressbench.compress(teacher, "prune,quantize", ratio=0.5)     # variants + their comparison
print(run.record["rows"][-1]["speedup"], run.record["rows"][-1]["akd_px"])
compressbench.save(run.final, "small.pt")                              # loadable with load_model
```

Models may be registered names, saved files, or any ``nn.Module`` whose forward returns the
teacher's output dict (``value``, ``jacobian``, ``heatmap``), such as a user's own FOMM-style
detector. Methods that need frames (calibration, importance) get held-out synthetic frames by
default. Bad arguments raise :class:`~compressbench.errors.CompressbenchError` naming the Python
argument (``frames=``), where the command line would name its option (``--frames``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from torch import nn

from compressbench import comparison, evaluation, profiling
from compressbench.artifacts import ExportResult, check_export_folder, export_variant
from compressbench.comparison.pipeline import CompressRun
from compressbench.compression import parse_chain, stage_options
from compressbench.data import FrameSource, frames_for
from compressbench.distillation.train import DistillOptions
from compressbench.distillation.train import distill as run_distillation
from compressbench.errors import CompressbenchError
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import (
    Provenance,
    Variant,
    load_model,
    model_label,
    provenance_of,
    save_variant,
    untrained_note,
)
from compressbench.records import ProfileRecord
from compressbench.variant_search import SearchOptions
from compressbench.variant_search import search as run_search

F = TypeVar("F", bound=Callable[..., Any])
_CLI_OPTION = re.compile(r"--([a-z][a-z0-9-]*)")


def python_names(message: str) -> str:
    """``--max-akd must be positive`` -> ``max_akd= must be positive``: the API's own words."""
    return _CLI_OPTION.sub(lambda m: m[1].replace("-", "_") + "=", message)


def _speaks_python(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CompressbenchError as exc:
            raise type(exc)(python_names(str(exc))) from None

    return wrapper  # type: ignore[return-value]


def _model_and_provenance(model: str | Path | nn.Module) -> tuple[nn.Module, Provenance, str]:
    if isinstance(model, nn.Module):
        return model, provenance_of(model), "model"
    if not isinstance(model, (str, Path)):
        raise CompressbenchError(f"model must be a registered name, a saved model file or an nn.Module, got {type(model).__name__}")
    module = load_model(model)
    return module, provenance_of(model, module), model_label(model)


def _check_counts(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


@_speaks_python
def compress(
    model: str | Path | nn.Module,
    chain: str | Sequence[str],
    *,
    stage: Mapping[str, Mapping[str, Any]] | None = None,
    data: str = "synthetic",
    frames: int = 32,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    runtime: str = "torch",
    batch: int = 1,
    input_size: int = 256,
    name: str | None = None,
    show_progress: bool = False,
    teacher: str | Path | nn.Module | None = None,
    **options: Any,
) -> CompressRun:
    """Compress ``model`` with a method chain and compare every stage with it, in one process.

    ``options`` go to every stage that takes them (``ratio=0.5``); ``stage`` sets one stage's
    options by method name or 1-based index (``stage={"quantize": {"backend": "fx"}}``). Returns a
    :class:`~compressbench.comparison.CompressRun`: ``.variants`` (one per stage, ``.final`` the
    last) and ``.record`` (the comparison rows, the first the model itself). ``teacher``: another
    model that ``recover`` stages fine-tune towards and every row is compared with (its row first),
    e.g. the original teacher of a saved pruned variant."""
    _check_counts(frames=frames, repeats=repeats, batch=batch, input_size=input_size, threads=threads)
    names = parse_chain(chain)
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()})
    module, start, label = _model_and_provenance(model)
    reference, _, reference_label = _model_and_provenance(teacher) if teacher is not None else (None, None, "")
    reference_label = "teacher" if isinstance(teacher, nn.Module) else reference_label
    if reference_label == (name or label):
        reference_label = "reference"  # two rows may not share a name
    return comparison.compress_and_compare(
        module, names, per_stage, FrameSource(data, frames, seed, input_size), name=name or label, provenance=start,
        seed=seed, threads=threads, warmup=warmup, repeats=repeats, runtime=runtime, batch=batch,
        show_progress=show_progress, reference=reference, reference_name=reference_label,
    )  # fmt: skip


@_speaks_python
def compare(
    teacher: str | Path | nn.Module,
    variants: Mapping[str, nn.Module] | Iterable[Variant],
    *,
    data: str = "synthetic",
    frames: int = 32,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    runtime: str = "torch",
    batch: int = 1,
    input_size: int = 256,
    show_progress: bool = False,
) -> dict:
    """Measure ``teacher`` and ``variants`` (``{name: module}`` or :class:`Variant` objects) on the
    same footing: one interleaved latency run, fidelity on held-out frames. Returns the record."""
    _check_counts(frames=frames, repeats=repeats, batch=batch, input_size=input_size, threads=threads)
    module, _, label = _model_and_provenance(teacher)
    if isinstance(variants, Mapping):
        entries = [Variant(str(n), m, provenance_of(m)) for n, m in variants.items()]
    else:
        entries = list(variants)
    if not entries or not all(isinstance(v, Variant) and isinstance(v.module, nn.Module) for v in entries):
        raise CompressbenchError("variants must be a non-empty {name: nn.Module} mapping or a list of Variants")
    return comparison.compare(
        module, entries, FrameSource(data, frames, seed, input_size).evaluation(), threads=threads, warmup=warmup,
        repeats=repeats, runtime=runtime, batch=batch, show_progress=show_progress, teacher_name=label,
    )  # fmt: skip


@_speaks_python
def evaluate(
    model: str | Path | nn.Module,
    *,
    against: str = "teacher",
    teacher: str | Path | nn.Module = "teacher",
    data: str = "synthetic",
    frames: int = 32,
    seed: int = 0,
    batch: int = 16,
    input_size: int = 256,
    threads: int | None = None,
    overlays: str | Path | None = None,
    show_progress: bool = False,
) -> dict:
    """AKD (px), jacobian error, heatmap similarity, and (with ground truth) landmark error of
    ``model`` on held-out test frames, against the teacher or the frames' ground truth.
    ``overlays``, a folder, receives PNGs of the first frames with both sets of keypoints drawn."""
    _check_counts(frames=frames, batch=batch, input_size=input_size, threads=threads)
    reference = evaluation.reference_for(against)
    batch_frames = frames_for(data, count=frames, split="test", seed=seed, size=input_size)
    evaluation.reference_for(against, batch_frames)  # ground truth needs landmarks: fail before loading models
    module, _, label = _model_and_provenance(model)
    teacher_module = _model_and_provenance(teacher)[0] if reference.needs_teacher else None
    note = untrained_note(model) if isinstance(model, (str, Path)) else None
    with torch_threads(threads):
        return evaluation.evaluate(
            module, batch_frames, against=against, teacher=teacher_module, batch_size=batch, model_name=label,
            data_name=data, show_progress=show_progress, seed=seed if data == "synthetic" else None, notes=[note],
            overlays=overlays,
        )  # fmt: skip


@_speaks_python
def profile(
    model: str | Path | nn.Module,
    input_shape: Sequence[int] | None = None,
    **settings: Any,
) -> ProfileRecord:
    """The per-module, per-block and per-layer profile of ``model`` as a typed record (see
    :func:`compressbench.profiling.profile`; ``.to_json()`` gives what ``compressbench profile`` writes).
    ``input_shape`` defaults to (1, 3, 256, 256), or the shape a deployed file was compiled for."""
    module, _, label = _model_and_provenance(model)
    input_shape = input_shape or getattr(module, "input_shape", None) or (1, 3, 256, 256)
    settings.setdefault("name", label)
    settings.setdefault("show_progress", False)
    return profiling.profile(module, input_shape, **settings)


@_speaks_python
def distill(
    student: str | Path = "lednet",
    *,
    teacher: str | Path | nn.Module = "teacher",
    show_progress: bool = False,
    **options: Any,
) -> Variant:
    """Train a student (a family name, a registered model, a saved file, or ``method=`` a chain on
    the teacher) to agree with the teacher; returns it as a :class:`Variant` whose provenance ends
    with the ``distill`` stage (its report holds the training summary). ``options`` are
    :class:`~compressbench.distillation.train.DistillOptions` fields (``steps=``, ``loss=``, ``pool=``...)."""
    known = set(DistillOptions.__dataclass_fields__) - {"student", "teacher", "progress"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompressbenchError(f"unknown distill option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    teacher_module, _, teacher_label = _model_and_provenance(teacher)
    settings = DistillOptions(student=str(student), teacher=str(teacher) if not isinstance(teacher, nn.Module) else "teacher",
                              progress=show_progress, **options)  # fmt: skip
    trained, _, provenance = run_distillation(settings, teacher=teacher_module)
    label = options.get("method") or model_label(student)
    return Variant(f"{label}-{settings.loss}".replace(",", "+"), trained.cpu().eval(), provenance)


@_speaks_python
def search(
    model: str | Path | nn.Module = "teacher",
    *,
    max_akd: float = 1.0,
    budget: str | float = "60m",
    show_progress: bool = False,
    **options: Any,
) -> tuple[dict, Variant | None]:
    """The fastest variant of ``model`` within ``max_akd`` px of it, spending at most ``budget`` of
    recovery training (``"60m"``, seconds as a number): ``(results record, winning Variant or None)``.
    ``options`` are :class:`~compressbench.variant_search.SearchOptions` fields (``methods=``,
    ``include=``, ``data=``, ``seed=``...)."""
    known = set(SearchOptions.__dataclass_fields__) - {"max_akd", "budget", "progress"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompressbenchError(f"unknown search option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    module, start, _ = _model_and_provenance(model)
    settings = SearchOptions(max_akd=max_akd, budget=budget, progress=show_progress, **options)
    return run_search(module, settings, start=start)


@_speaks_python
def export(
    model: str | Path | nn.Module,
    out: str | Path,
    chain: str | Sequence[str] | None = None,
    *,
    runtime: str = "openvino",
    precision: str = "fp32",
    stage: Mapping[str, Mapping[str, Any]] | None = None,
    data: str = "synthetic",
    frames: int = 32,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    input_size: int = 256,
    name: str | None = None,
    show_progress: bool = False,
    **options: Any,
) -> ExportResult:
    """Compress ``model`` with ``chain`` (None: as it is), measure it on ``runtime`` at ``precision``
    against the eager fp32 model, and write the program that was timed into folder ``out`` with a
    ``manifest.json``, after reloading it in a fresh session and checking it reproduces the measured
    AKD (:func:`compressbench.artifacts.export_variant`). Returns the
    :class:`~compressbench.artifacts.ExportResult`."""
    _check_counts(frames=frames, repeats=repeats, input_size=input_size, threads=threads)
    names = parse_chain(chain) if chain else []
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()}) if names else []
    if options and not names:
        raise CompressbenchError(f"options {', '.join(sorted(options))} need a method chain (chain=)")
    check_export_folder(Path(out))
    module, start, label = _model_and_provenance(model)
    return export_variant(
        module, start, name or label, names, per_stage, FrameSource(data, frames, seed, input_size), Path(out),
        runtime=runtime, precision=precision, threads=threads, warmup=warmup, repeats=repeats, seed=seed,
        show_progress=show_progress,
    )  # fmt: skip


@_speaks_python
def save(variant: Variant | nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Save a variant (or a model of known origin) so that ``load_model(path)`` rebuilds it."""
    if isinstance(variant, nn.Module):
        variant = Variant(type(variant).__name__, variant, provenance_of(variant))
    return save_variant(variant, path, metadata)


load_model = _speaks_python(load_model)
