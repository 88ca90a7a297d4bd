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
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from torch import nn

import compressbench.comparison as comparison
import compressbench.distillation.train as distillation  # called through the module: tests replace its distill
import compressbench.evaluation as evaluation
from compressbench.artifacts import EXPORT_RUNTIMES, ExportResult, check_export_folder, export_variant
from compressbench.comparison.hints import DEFAULT_MAX_AKD, annotate, check_bound, model_arguments
from compressbench.comparison.pipeline import CompressRun
from compressbench.comparison.saving import check_exportable, write_outputs
from compressbench.compression import CompressionContext, parse_chain, stage_options
from compressbench.compression.sensitivity import SensitivityRecord, analyse_precision, check_arguments
from compressbench.data import FrameSource, frames_for
from compressbench.errors import CompressbenchError
from compressbench.files import check_model_path, check_results_path, check_writable, render_json, write_atomic
from compressbench.profiling.health import check_health
from compressbench.profiling.peaks import describe_machine, machine_peaks
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import (
    WEIGHTS_CHOICES,
    Provenance,
    Variant,
    check_savable,
    derive,
    model_label,
    provenance_of,
    save_variant,
    sidecar_path,
    untrained_note,
)
from compressbench.provenance import load_model as _load_model
from compressbench.provenance import load_variant as _load_variant
from compressbench.records import ComparisonRecord, ProfileRecord, SearchRecord
from compressbench.report.overlays import check_overlay_dir
from compressbench.runtimes import check_runtime
from compressbench.runtimes.layers import parse_layer_list
from compressbench.runtimes.profile import profile as profile_model
from compressbench.suite import MEASURE_DEFAULTS, Suite, VariantSpec, build_variant, model_suite, read_suite
from compressbench.variant_search import SearchOptions, check_include, front_suite, save_winner
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


def _model_and_provenance(
    model: str | Path | nn.Module | Variant,
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
) -> tuple[nn.Module, Provenance, str]:
    """The module, where it came from and its row label: of a name or file (with ``checkpoint``,
    ``config`` and ``weights`` as :func:`load_model` takes them), a module, or a loaded Variant."""
    if isinstance(model, Variant):
        return model.module, model.provenance, model.name
    if not isinstance(model, (str, Path, nn.Module)):
        raise CompressbenchError(f"model must be a registered name, a saved model file or an nn.Module, got {type(model).__name__}")
    loaded = _load_variant(model, checkpoint=checkpoint, config=config, weights=weights)
    return loaded.module, loaded.provenance, loaded.name


def _check_counts(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


def _check_non_negative(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise CompressbenchError(f"--{name.replace('_', '-')} must be zero or more, got {value!r}")


SEED_MAX = 2**63 - 1  # what torch's and numpy's generators both take


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise CompressbenchError(f"--seed must be an integer from 0 to {SEED_MAX} (2**63 - 1), got {seed!r}")


def _check_data(data: str | Path) -> None:
    if str(data) != "synthetic" and not Path(data).exists():
        raise CompressbenchError(f"--data {data} does not exist; give 'synthetic', a folder of images or a video file")


def _check_weights(weights: str) -> None:
    if weights not in WEIGHTS_CHOICES:
        raise CompressbenchError(f"unknown --weights {weights!r}; choose one of: {', '.join(WEIGHTS_CHOICES)}")


def check_distinct_files(paths: Mapping[str, str | Path | None]) -> None:
    """No two of ``paths`` (option -> file) may name the same file."""
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise CompressbenchError(f"{flag} and {seen[resolved]} name the same file {path}; give different files")
        seen[resolved] = flag


def _is_named(model: Any) -> bool:
    return isinstance(model, (str, Path))


@_speaks_python
def compress(
    model: str | Path | nn.Module | Variant,
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
    precision: str | None = None,
    batch: int = 1,
    input_size: int = 256,
    name: str | None = None,
    show_progress: bool = False,
    teacher: str | Path | nn.Module | Variant | None = None,
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    max_akd: float = DEFAULT_MAX_AKD,
    out: str | Path | None = None,
    export_onnx: str | Path | None = None,
    export_pte: str | Path | None = None,
    **options: Any,
) -> CompressRun:
    """Compress ``model`` with a method chain and compare every stage with it, in one process
    (``compressbench compress``).

    ``options`` go to every stage that takes them (``ratio=0.5``); ``stage`` sets one stage's
    options by method name or 1-based index (``stage={"quantize": {"backend": "fx"}}``). Returns a
    :class:`~compressbench.comparison.CompressRun`: ``.variants`` (one per stage, ``.final`` the
    last), ``.record`` (the comparison rows, the first the model itself; rows above ``max_akd`` px
    carry a note naming the recover command) and ``.written`` (the files saved). ``teacher``: another
    model that ``recover`` stages fine-tune towards and every row is compared with (its row first),
    e.g. the original teacher of a saved pruned variant. ``checkpoint``/``config``/``weights`` load
    a named model as :func:`load_model` does; ``precision`` (None: the one in ``runtime``, as in
    ``"openvino:bf16"``, else fp32). ``out`` saves the final variant (loadable with ``load_model``,
    plus ``out.json``), ``export_onnx`` / ``export_pte`` export it; all written only after the
    measurement succeeded, all or nothing."""
    _check_counts(frames=frames, input_size=input_size, threads=threads, repeats=repeats, batch=batch)
    _check_non_negative(warmup=warmup)
    _check_seed(seed)
    check_bound(max_akd)
    if out is not None:
        check_model_path(out)
    if precision is not None or ":" not in runtime:
        check_runtime(runtime, precision or "fp32")
    names = parse_chain(chain)
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()})
    check_distinct_files({"--out": out, "--out's sidecar": sidecar_path(out) if out else None, "--export-onnx": export_onnx,
                     "--export-pte": export_pte})  # fmt: skip
    if export_onnx is not None:
        check_writable(export_onnx)
    if export_pte is not None:
        check_runtime("executorch")  # installed? one line before any work if not
        check_writable(export_pte)
    _check_data(data)
    if _is_named(teacher) and _is_named(model) and model_label(teacher) == model_label(model):
        raise CompressbenchError("--teacher names the model itself; leave it out (that is the default)")
    module, start, label = _model_and_provenance(model, checkpoint, config, weights)  # module, provenance, label at once
    if out is not None:
        check_savable(start, out)
        check_writable(sidecar_path(out))
    reference, _, reference_label = _model_and_provenance(teacher) if teacher is not None else (None, None, "reference")
    reference_label = "teacher" if isinstance(teacher, nn.Module) else reference_label
    if reference_label == (name or label):
        reference_label = "reference"  # two rows may not share a name
    run = comparison.compress_and_compare(
        module, names, per_stage, FrameSource(data, frames, seed, input_size), name=name or label, provenance=start,
        seed=seed, threads=threads, warmup=warmup, repeats=repeats, runtime=runtime, precision=precision, batch=batch,
        show_progress=show_progress, reference=reference, reference_name=reference_label,
        before_measure=(lambda variants: check_exportable(variants[-1].module)) if export_onnx is not None else None,
    )  # fmt: skip
    hint = None
    if _is_named(model):  # how the recover hint names the model: as the command line would
        hint = model_arguments(
            str(model), config=config, checkpoint=checkpoint, weights=weights if weights != "default" else None,
            teacher=str(teacher) if _is_named(teacher) else None,
        )  # fmt: skip
    run = replace(run, record=annotate(run.record, max_akd, hint))  # hints for rows above the bound
    record, written = write_outputs(run, out, export_onnx, export_pte)
    return replace(run, record=record, written=tuple(written))


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
) -> ComparisonRecord:
    """Measure ``teacher`` and ``variants`` (``{name: module}`` or :class:`Variant` objects) on the
    same footing: one interleaved latency run, fidelity on held-out frames. Returns the record
    (:class:`~compressbench.records.ComparisonRecord`; ``.to_json()`` is what ``compress`` writes)."""
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


OVERLAY_LIMIT = 8  # frames drawn by evaluate(overlays=)


@_speaks_python
def evaluate(
    model: str | Path | nn.Module | Variant,
    *,
    against: str = "teacher",
    teacher: str | Path | nn.Module | Variant = "teacher",
    data: str = "synthetic",
    frames: int = 32,
    seed: int = 0,
    batch: int = 16,
    input_size: int = 256,
    threads: int | None = None,
    overlays: str | Path | None = None,
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    show_progress: bool = False,
) -> dict:
    """AKD (px), jacobian error, heatmap similarity, and (with ground truth) landmark error of
    ``model`` on held-out test frames, against the teacher or the frames' ground truth
    (``compressbench evaluate``). ``overlays``, a folder, receives PNGs of the first
    :data:`OVERLAY_LIMIT` frames with both sets of keypoints drawn. ``checkpoint``/``config``/
    ``weights`` load a named model as :func:`load_model` does."""
    _check_counts(frames=frames, batch=batch, input_size=input_size, threads=threads)
    _check_seed(seed)
    reference = evaluation.reference_for(against)
    _check_weights(weights)
    if overlays is not None:
        check_overlay_dir(overlays)
    batch_frames = frames_for(data, count=frames, split="test", seed=seed, size=input_size)
    evaluation.reference_for(against, batch_frames)  # ground truth needs landmarks: fail before loading models
    module, _, label = _model_and_provenance(model, checkpoint, config, weights)
    teacher_module = _model_and_provenance(teacher)[0] if reference.needs_teacher else None
    note = untrained_note(model, weights, checkpoint) if _is_named(model) else None
    with torch_threads(threads):
        return evaluation.evaluate(
            module, batch_frames, against=against, teacher=teacher_module, batch_size=batch, model_name=label,
            data_name=data, show_progress=show_progress, seed=seed if data == "synthetic" else None, notes=[note],
            overlays=overlays, overlay_limit=OVERLAY_LIMIT,
        )  # fmt: skip


@_speaks_python
def profile(
    model: str | Path | nn.Module | Variant,
    input_shape: Sequence[int] | None = None,
    *,
    batch: int = 1,
    input_size: int | None = None,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 50,
    seed: int = 0,
    depth: int = 2,
    peaks: Any = True,
    runtime: str = "torch",
    precision: str = "fp32",
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    name: str | None = None,
    show_progress: bool = False,
) -> ProfileRecord:
    """The per-module, per-block and per-layer profile of ``model`` as a typed record
    (``compressbench profile``; see :func:`compressbench.runtimes.profile.profile`: ``.to_json()``
    gives what ``compressbench profile --format json`` writes). ``input_shape`` defaults to
    (``batch``, the model's channels, ``input_size``, ``input_size``), ``input_size`` to 256 or the
    size a deployed file was compiled for (its whole shape, when neither is given). ``peaks``: True
    compares each layer with this machine's measured peaks (measured once, then cached), False
    does not, or the :class:`~compressbench.profiling.peaks.Peaks` to use."""
    _check_counts(batch=batch, input_size=input_size, threads=threads, repeats=repeats, depth=depth)
    _check_non_negative(warmup=warmup)
    _check_seed(seed)
    check_runtime(runtime, precision)
    module, _, label = _model_and_provenance(model, checkpoint, config, weights)
    if input_shape is None:
        compiled = getattr(module, "input_shape", None)
        if compiled and input_size is None and batch == 1:
            input_shape = tuple(compiled)
        else:
            channels = getattr(getattr(module, "config", None), "num_channels", 3)
            size = input_size or 256
            input_shape = (batch, channels, size, size)
    if peaks is True:
        peaks = machine_peaks(threads)
    return profile_model(
        module, input_shape, name=name or label, warmup=warmup, repeats=repeats, threads=threads, seed=seed, depth=depth,
        show_progress=show_progress, peaks=peaks or None, runtime=runtime, precision=precision,
    )  # fmt: skip


@dataclass(frozen=True)
class DistillRun:
    """What :func:`distill` trained and measured: ``variant`` (the student, its provenance ending with
    the ``distill`` stage), ``record`` (its comparison with the teacher, with the ``training`` summary
    and, when saved, ``out``; None where nothing was measured: a non-zero torchrun rank), ``saved``
    (the student's file, or None) and ``result`` (the trainer's
    :class:`~compressbench.training.trainer.TrainResult`: steps, best validation AKD, history)."""

    variant: Variant
    record: ComparisonRecord | None
    saved: Path | None
    result: Any


@_speaks_python
def distill(
    student: str | Path = "lednet",
    *,
    teacher: str | Path | nn.Module | Variant = "teacher",
    teacher_checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    settings: Mapping[str, Any] | None = None,
    show_progress: bool = False,
    **options: Any,
) -> DistillRun:
    """Train a student (a family name, a registered model, a saved file, or ``method=`` a chain on
    the teacher) to agree with the teacher, then compare it with the teacher in one interleaved run
    on ``eval_frames`` held-out frames (``compressbench distill``), and save it to ``out`` (loadable
    with ``load_model``; None: not saved). ``options`` are
    :class:`~compressbench.distillation.train.DistillOptions` fields (``steps=``, ``loss=``, ``pool=``,
    ``weights=`` a :class:`~compressbench.distillation.losses.LossWeights`...); ``settings``, the
    options as given, go into the training summary (default: these arguments). Returns a :class:`DistillRun`."""
    from compressbench.training.distributed import is_main_process, resolve_device

    known = set(distillation.DistillOptions.__dataclass_fields__) - {"student", "teacher", "teacher_checkpoint", "out", "progress"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompressbenchError(f"unknown distill option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    _check_counts(threads=threads, repeats=repeats)
    _check_non_negative(warmup=warmup)
    if out is not None:
        check_model_path(out)
        check_writable(out)
    resolve_device(options.get("device", "cpu"))
    named_teacher = str(teacher) if _is_named(teacher) else "teacher"
    plan = distillation.DistillOptions(student=str(student), teacher=named_teacher, teacher_checkpoint=teacher_checkpoint,
                                       out=Path(out) if out is not None else None, progress=show_progress, **options)  # fmt: skip
    plan.validate()
    teacher_module = _model_and_provenance(teacher, teacher_checkpoint)[0]
    with torch_threads(threads):  # a training run beside other work must not take every core
        trained, result, provenance = distillation.distill(plan, teacher=teacher_module)
    trained = trained.cpu().eval()
    variant = Variant(f"{distillation.student_label(plan)}-{plan.loss}", trained, provenance)
    if not is_main_process():  # under torchrun, rank 0 alone measures, saves and reports
        return DistillRun(variant, None, None, result)
    record = comparison.compare(
        teacher_module.cpu(), [variant], FrameSource(plan.data, plan.eval_frames, plan.seed, plan.size).evaluation(),
        threads=threads, warmup=warmup, repeats=repeats, show_progress=show_progress,
    )  # fmt: skip
    given = dict(settings) if settings is not None else {
        "student": str(student), "teacher": named_teacher,
        **{k: asdict(v) if is_dataclass(v) else v for k, v in options.items()},
    }  # fmt: skip
    if out is None:
        return DistillRun(variant, replace(record, training=distillation.training_record(plan, result, given)), None, result)
    record, saved = distillation.save_distilled_record(record, trained, provenance, plan, result, settings=given)
    return DistillRun(variant, record, saved, result)


SEARCH_CACHE = Path.home() / ".cache" / "compressbench" / "search"  # search's default cache of trained candidates


@dataclass(frozen=True)
class SearchRun:
    """What :func:`search` found and wrote: ``record`` (the :class:`~compressbench.records.SearchRecord`),
    ``winner`` (the fastest variant within the bound, None when none is), ``exported`` (the
    :class:`~compressbench.artifacts.ExportResult` of ``export=``, if any) and ``written`` (every file
    saved). Unpacks as ``record, winner = search(...)``."""

    record: SearchRecord
    winner: Variant | None
    exported: ExportResult | None = None
    written: tuple[Path, ...] = ()

    def __iter__(self):
        return iter((self.record, self.winner))


@_speaks_python
def search(
    model: str | Path | nn.Module | Variant = "teacher",
    *,
    max_akd: float = 1.0,
    budget: str | float = "60m",
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    out: str | Path | None = None,
    export: str | Path | None = None,
    results: str | Path | None = None,
    suite: str | Path | None = None,
    cache: str | Path | None = SEARCH_CACHE,
    show_progress: bool = False,
    **options: Any,
) -> SearchRun:
    """The fastest variant of ``model`` within ``max_akd`` px of it, spending at most ``budget`` of
    recovery training (``"60m"``, seconds as a number), as ``compressbench search`` finds it.
    ``options`` are :class:`~compressbench.variant_search.SearchOptions` fields (``methods=``,
    ``include=``, ``data=``, ``seed=``, ``size=``...). ``out`` saves the winner (plus ``out.json``),
    ``export`` exports it into that folder as the file its runtime timed (measured against ``model``),
    ``results`` writes the record's JSON and ``suite`` a suite TOML that rebuilds the front with
    ``bench``; every input is checked before any training. ``cache``: the resumable cache of trained
    candidates (None: none). Returns a :class:`SearchRun` (``record, winner = search(...)`` unpacks it)."""
    known = set(SearchOptions.__dataclass_fields__) - {"max_akd", "budget", "progress", "cache"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise CompressbenchError(f"unknown search option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    settings = SearchOptions(max_akd=max_akd, budget=budget, progress=show_progress,
                             cache=Path(cache) if cache is not None else None, **options).resolved()  # fmt: skip
    settings.validate()
    for path in settings.include:
        check_include(path)
    if suite is not None and weights != "default":
        raise CompressbenchError("--suite rebuilds the front from the model's trained weights; it cannot follow --weights random")
    if suite is not None and not _is_named(model):
        raise CompressbenchError("--suite rebuilds the front from a registered model or a saved file; give model= as one")
    if out is not None:
        check_model_path(out)
    if export is not None:
        if settings.runtime.partition(":")[0] not in EXPORT_RUNTIMES:
            raise CompressbenchError(f"--export writes {', '.join(EXPORT_RUNTIMES)} files; give --runtime one of them "
                                     "(a PyTorch winner is saved with --out)")  # fmt: skip
        check_export_folder(Path(export))
    for flag, path in (("--results", results), ("--suite", suite)):
        if path is not None:
            check_results_path(path, flag)
            check_writable(path)
    module, start, label = _model_and_provenance(model, checkpoint, config, weights)
    if out is not None:
        check_savable(start, out)
        check_writable(sidecar_path(out))

    record, winner = run_search(module, settings, start=start)
    written: list[Path] = []
    if out is not None and winner is not None:
        record = save_winner(record, winner, out)
        written += [Path(out), sidecar_path(out)]
    shipped = None
    if export is not None and winner is not None:
        frames = FrameSource(settings.data, settings.frames, settings.seed, settings.size)
        shipped = export_variant(
            winner.module, winner.provenance, winner.name, [], [], frames, Path(export), runtime=settings.runtime,
            precision=settings.precision, threads=settings.threads, warmup=settings.warmup, repeats=settings.repeats,
            seed=settings.seed, reference=module, reference_name=label, show_progress=show_progress,
        )  # fmt: skip
        written += list(shipped.files)
    if results is not None:
        write_atomic(results, render_json(record))
        written.append(Path(results))
    if suite is not None:
        given = {"model": str(model), "checkpoint": checkpoint and str(checkpoint), "config": config and str(config)}
        write_atomic(suite, front_suite(record, {k: v for k, v in given.items() if v}, settings))
        written.append(Path(suite))
    return SearchRun(record, winner, shipped, tuple(written))


@_speaks_python
def export(
    model: str | Path | nn.Module | Variant,
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
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    show_progress: bool = False,
    **options: Any,
) -> ExportResult:
    """Compress ``model`` with ``chain`` (None: as it is), measure it on ``runtime`` at ``precision``
    against the eager fp32 model, and write the program that was timed into folder ``out`` with a
    ``manifest.json``, after reloading it in a fresh session and checking it reproduces the measured
    AKD (``compressbench export``; :func:`compressbench.artifacts.export_variant`). Returns the
    :class:`~compressbench.artifacts.ExportResult`: the folder, its files and the manifest."""
    _check_counts(frames=frames, input_size=input_size, threads=threads, repeats=repeats)
    _check_non_negative(warmup=warmup)
    _check_seed(seed)
    base = runtime.partition(":")[0]
    if base not in EXPORT_RUNTIMES:
        check_runtime(base)  # an unknown name lists the known ones
        raise CompressbenchError(f"--runtime {runtime}: export writes {', '.join(EXPORT_RUNTIMES)} files; "
                                 "a PyTorch variant is saved with compress --out FILE.pt")  # fmt: skip
    check_runtime(base, precision)
    check_export_folder(Path(out))
    names = parse_chain(chain) if chain else []
    if (options or stage) and not names:
        raise CompressbenchError(f"options {', '.join(sorted([*options, *(stage or {})]))} need a method chain (chain=)")
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()}) if names else []
    _check_data(data)
    module, start, label = _model_and_provenance(model, checkpoint, config, weights)
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


# -- suites, reports, the CI gate, the machine: what bench, report, baseline, check and machine do --------

DEFAULT_SUITE = Path("benchmarks/suite.toml")
DEFAULT_RESULTS = Path("results.json")
DEFAULT_REPORT = Path("reports/REPORT.md")
DEFAULT_BASELINE = Path("benchmarks/baseline.json")


def _suite(suite: str | Path | Suite, only: str | Sequence[str] | None) -> Suite:
    """The suite file read (or a :class:`~compressbench.suite.Suite` as it is), cut down to ``only``
    (names, or one comma-separated string; the first is the reference)."""
    parsed = suite if isinstance(suite, Suite) else read_suite(suite)
    if only:
        names = only.split(",") if isinstance(only, str) else list(only)
        parsed.variants = [parsed.get(name.strip()) for name in names if name.strip()]
    return parsed


def _results_destination(output: str | Path | None) -> Path | None:
    if output is None:
        return None
    check_results_path(output)
    return check_writable(output)


@_speaks_python
def bench(
    suite: str | Path | Suite = DEFAULT_SUITE,
    *,
    output: str | Path | None = DEFAULT_RESULTS,
    only: str | Sequence[str] | None = None,
    use_cache: bool = True,
    profiles: bool = True,
    show_progress: bool = False,
) -> dict:
    """Build and measure every variant of ``suite`` in one process (``compressbench bench``) and
    write the results JSON to ``output`` (None: write nothing). Returns the results: the comparison
    record under ``"comparison"`` (rows in suite order, the first the reference), per-variant
    profiles, keypoints for the report's overlays, and ``"cached"`` (variants read from the cache)."""
    from compressbench.bench import run_suite  # here: a plain `import compressbench` needs no suite runner

    destination = _results_destination(output)
    results = run_suite(_suite(suite, only), use_cache=use_cache, show_progress=show_progress, profiles=profiles)
    if destination is not None:
        write_atomic(destination, render_json(results))
    return results


@_speaks_python
def report(
    results: str | Path,
    output: str | Path = DEFAULT_REPORT,
    *,
    akd_budget: float = 1.0,
    command: str | None = None,
) -> list[Path]:
    """Write the Markdown report of a results file of :func:`bench` (or a comparison of compress /
    search) to ``output``, its PNGs next to it, creating its folder (``compressbench report``).
    ``akd_budget``: the AKD (px) within which the fastest variant is called the best; ``command``:
    how the report says it was made (default: the ``compressbench report`` line). Returns every path written."""
    from compressbench.report.markdown_report import read_results, write_report  # here: plots load matplotlib

    if not akd_budget > 0:  # also refuses nan
        raise CompressbenchError(f"--akd-budget must be a positive number of pixels, got {akd_budget}")
    doc = read_results(results)  # the input first: a missing input is the error to report
    output = Path(output)
    check_results_path(output)
    if output.parent.exists() and not output.parent.is_dir():
        raise CompressbenchError(f"cannot write {output}: {output.parent} is a file")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise CompressbenchError(f"cannot create the folder of {output}: {reason}") from None
    check_writable(output)
    return write_report(doc, output, akd_budget, command=command or f"compressbench report {results} -o {output}")


@dataclass(frozen=True)
class BaselineRun:
    """What :func:`baseline` recorded: ``document`` is the whole baseline file (this machine's
    baseline last, others' kept with ``add``), ``notes`` what the user should know (health forced,
    baselines replaced), ``path`` where it was written (None: not written), ``suite`` the variants
    recorded."""

    document: dict
    notes: tuple[str, ...]
    path: Path | None
    suite: Suite

    @property
    def recorded(self) -> dict:
        """This machine's baseline: its machine, settings and one entry per variant."""
        return self.document["baselines"][-1]


@_speaks_python
def baseline(
    suite: str | Path | Suite | None = None,
    *,
    output: str | Path | None = DEFAULT_BASELINE,
    only: str | Sequence[str] | None = None,
    models: Sequence[str | Path] | None = None,
    repeats: int | None = None,
    threads: int | None = None,
    add: bool = False,
    force: bool = False,
    runtime: str | None = None,
    precision: str | None = None,
    show_progress: bool = False,
) -> BaselineRun:
    """Record ruler-relative latency samples, params and MACs of ``suite``'s variants on this
    machine: the reference of :func:`check` (``compressbench baseline``); ``suite`` defaults to
    benchmarks/suite.toml. ``runtime``/``precision``
    default to the suite's ``[measure]``; ``repeats``/``threads`` to ``[tool.compressbench]`` of
    ./pyproject.toml. ``models`` (names, saved files, deployed files) are recorded as they are
    instead of a suite. ``add`` keeps the other machines' baselines of ``output`` (and this machine's
    on other runtimes); an unhealthy machine (busy, throttled) is refused unless ``force``."""
    from compressbench.regress import read_settings  # here: only the gate needs the gate's statistics
    from compressbench.regress.baseline import read_baseline_file, record_baseline

    _check_counts(repeats=repeats, threads=threads)
    destination = _results_destination(output)
    if add and destination is None:
        raise CompressbenchError("--add adds to the baseline file --output; give one")
    existing = read_baseline_file(destination) if add and destination.exists() else None  # a broken file fails first
    if models and (suite is not None or only):
        raise CompressbenchError("give a suite (with --only) or --model, not both")
    parsed = model_suite([str(m) for m in models]) if models else _suite(suite if suite is not None else DEFAULT_SUITE, only)
    runtime = runtime or parsed.measure["runtime"]
    precision = precision or parsed.measure["precision"]
    check_runtime(runtime, precision)
    settings = read_settings(repeats=repeats, threads=threads)
    doc, notes = record_baseline(
        parsed, settings, runtime=runtime, precision=precision, force=force, add_to=existing, add=add,
        show_progress=show_progress,
    )  # fmt: skip
    if destination is not None:
        write_atomic(destination, render_json(doc))
    return BaselineRun(doc, tuple(notes), destination, parsed)


def build_measure(baseline: dict, settings) -> dict:
    """How a baseline's variants were built (its suite's [measure], recorded since baseline format
    2; the suite defaults before), on synthetic frames at the check's size and seed."""
    recorded = baseline.get("measure") or {}
    return {**MEASURE_DEFAULTS, **recorded, "data": "synthetic", "input_size": settings.input_size, "seed": settings.seed}


@dataclass(frozen=True)
class CheckRun:
    """The verdict of :func:`check`: ``exit_code`` 0 pass, 1 regression, 3 inconclusive (the
    command's exit status); ``record`` what ``compressbench check --format json`` prints (one
    result per entry under ``"results"``, the latency mode, the machine match, health);
    ``settings`` the check's settings; ``notes`` the lines said before the verdict."""

    record: dict
    settings: Any
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return int(self.record["exit_code"])

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def results(self) -> list[dict]:
        return list(self.record["results"])


@_speaks_python
def check(
    baseline: str | Path = DEFAULT_BASELINE,
    *,
    model: str | Path | nn.Module | None = None,
    entry: str | None = None,
    max_slowdown: str | float | None = None,
    repeats: int | None = None,
    threads: int | None = None,
    latency: str | None = None,
    runtime: str | None = None,
    precision: str | None = None,
    show_progress: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> CheckRun:
    """Re-measure against ``baseline`` and decide (``compressbench check``): every entry rebuilt from
    its recorded spec, or ``model`` (a name, a file or a module) against its entry (``entry`` picks
    one where several share its architecture). ``max_slowdown`` (``"10%"`` or 0.1), ``repeats``,
    ``threads`` and ``latency`` (gate | strict | advisory) default to ``[tool.compressbench]`` of
    ./pyproject.toml; ``runtime``/``precision`` pick the baseline measured there. ``on_note`` hears
    each note as it is known (a foreign CPU, an entry that cannot be rebuilt), before the measuring."""
    from compressbench.regress import parse_fraction, read_settings  # here: only the gate needs them
    from compressbench.regress.baseline import check_entry_runtimes, headline, pick_entry, read_baseline, run_check

    _check_counts(repeats=repeats, threads=threads)
    notes: list[str] = []

    def note(line: str) -> None:
        notes.append(line)
        if on_note is not None:
            on_note(line)

    slowdown = parse_fraction(str(max_slowdown)) if max_slowdown is not None else None
    settings = read_settings(max_slowdown=slowdown, repeats=repeats, threads=threads, latency=latency)
    wanted = None
    if runtime is not None or precision is not None:
        wanted = (runtime or "torch", precision or "fp32")
        check_runtime(*wanted)
    doc = read_baseline(baseline, threads=settings.threads, runtime=wanted)
    if model is None and not any(e.get("spec") for e in doc["entries"]):
        raise CompressbenchError(f"nothing to check: no entry of {baseline} records the spec it was built from; "
                                 "record the baseline again with 'compressbench baseline', or name a model with --model")
    check_entry_runtimes(doc["entries"])  # a runtime not installed here: one line, before building anything
    health = check_health(settings.threads)
    if model is not None:
        loaded = _load_variant(model)
        chosen = pick_entry(doc, loaded.module, loaded.name, entry)
        modules = {chosen["name"]: Variant(chosen["name"], loaded.module, loaded.provenance)}
    else:
        modules = {e["name"]: build_variant(VariantSpec(**e["spec"]), build_measure(doc, settings), show_progress=show_progress)
                   for e in doc["entries"] if e.get("spec")}  # fmt: skip
        unbuilt = [e["name"] for e in doc["entries"] if not e.get("spec")]
        if unbuilt:
            note(f"not checked (no spec to rebuild them from): {', '.join(unbuilt)}")
    top = headline(doc.get("match"), settings.latency)  # after every input is known good: an error stays the only line
    if top:
        note(top)
    record = run_check(doc, settings, modules, show_progress=show_progress, health=health)
    return CheckRun(record, settings, tuple(notes))


@_speaks_python
def machine(threads: int | None = None, *, peaks: bool = True, refresh: bool = False) -> dict:
    """What timings here are comparable with (``compressbench machine``): ``"machine"`` (CPU, ISA
    features, cores, threads and the fingerprint ``"key"``), ``"health"`` now, and with ``peaks``
    the measured peaks (read from the cache unless ``refresh``; None without ``peaks``)."""
    _check_counts(threads=threads)
    return describe_machine(threads, measure=peaks, refresh=refresh)


# the public names speak Python; the functions above call the unwrapped ones, so that a command (which
# calls them unwrapped, see compressbench.cli.common.command_form) keeps naming its --options
load_model = _speaks_python(_load_model)
load_variant = _speaks_python(_load_variant)


@_speaks_python
def sensitivity(
    model: str | Path | nn.Module = "teacher",
    chain: str | Sequence[str] | None = None,
    *,
    runtime: str = "openvino",
    max_akd: float = 1.0,
    teacher: str | Path | nn.Module | None = None,
    stage: Mapping[str, Mapping[str, Any]] | None = None,
    layers: str | Sequence[str] | None = None,
    float_precision: str = "fp32",
    calibration: str | None = None,
    data: str = "synthetic",
    frames: int = 32,
    calibration_frames: int = 32,
    seed: int = 0,
    threads: int | None = None,
    input_size: int = 256,
    only_int8: bool = True,
    latency: bool = True,
    warmup: int = 5,
    repeats: int = 20,
    name: str | None = None,
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    weights: str = "default",
    show_progress: bool = False,
    **options: Any,
) -> SensitivityRecord:
    """Per-layer int8 sensitivity of ``model`` (after ``chain``, if given) on ``runtime`` (openvino
    or onnxruntime) and the mixed precision that keeps the fewest layers float for an AKD within
    ``max_akd`` px of ``teacher`` (default: the model itself before the chain); see
    :mod:`compressbench.compression.sensitivity`. ``record.mixed.stage`` is the ``mixed`` stage to
    append to the chain; ``record.to_json()`` what ``compressbench sensitivity --output`` writes.
    ``name``: the model's label in the record (default: its registered name or file stem);
    ``checkpoint``/``config``/``weights`` load a named model as :func:`load_model` does."""
    _check_counts(frames=frames, calibration_frames=calibration_frames, input_size=input_size, threads=threads,
                  repeats=repeats)  # fmt: skip
    _check_non_negative(warmup=warmup)
    _check_seed(seed)
    method = check_arguments(runtime, max_akd, calibration, float_precision)
    names = parse_chain(chain) if chain else []
    if (options or stage) and not names:
        raise CompressbenchError(f"options {', '.join(sorted([*options, *(stage or {})]))} need a method chain (chain=)")
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()}) if names else []
    _check_data(data)
    if _is_named(teacher) and _is_named(model) and model_label(teacher) == model_label(model):
        raise CompressbenchError("--teacher names the model itself; leave it out (that is the default)")
    source = FrameSource(data, frames, seed, input_size)
    module, start, label = _model_and_provenance(model, checkpoint, config, weights)
    label = name or label
    reference, _, reference_label = _model_and_provenance(teacher) if teacher is not None else (module, None, label)
    if names:
        context = CompressionContext(calibration_frames=source.calibration, input_shape=(1, 3, input_size, input_size),
                                     seed=seed, show_progress=show_progress, teacher=reference)  # fmt: skip
        module = derive(module, names, per_stage, context, provenance=start, name=label)[-1].module
    chosen = None if layers is None else list(parse_layer_list(layers))
    return analyse_precision(
        module, runtime, max_akd, source, reference=reference, model_name=label, reference_name=reference_label,
        chain=names, layers=chosen, only_int8=only_int8, float_precision=float_precision, calibration_method=method,
        calibration_frames=calibration_frames, threads=threads, latency=latency, warmup=warmup, repeats=repeats,
        show_progress=show_progress,
    )  # fmt: skip
