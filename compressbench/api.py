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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from torch import nn

import compressbench.comparison as comparison
import compressbench.evaluation as evaluation
from compressbench.artifacts import ExportResult, check_export_folder, export_variant
from compressbench.comparison.pipeline import CompressRun
from compressbench.compression import CompressionContext, parse_chain, stage_options
from compressbench.compression.sensitivity import SensitivityRecord, analyse_precision, check_arguments
from compressbench.data import FrameSource, frames_for
from compressbench.distillation.train import DistillOptions
from compressbench.distillation.train import distill as run_distillation
from compressbench.errors import CompressbenchError
from compressbench.files import check_results_path, check_writable, render_json, write_atomic
from compressbench.profiling.health import check_health
from compressbench.profiling.peaks import describe_machine
from compressbench.profiling.timing import torch_threads
from compressbench.provenance import (
    Provenance,
    Variant,
    derive,
    load_model,
    load_variant,
    model_label,
    provenance_of,
    save_variant,
    untrained_note,
)
from compressbench.records import ComparisonRecord, ProfileRecord, SearchRecord
from compressbench.runtimes import check_runtime
from compressbench.runtimes.layers import parse_layer_list
from compressbench.runtimes.profile import profile as profile_model
from compressbench.suite import MEASURE_DEFAULTS, Suite, VariantSpec, build_variant, model_suite, read_suite
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
    if not isinstance(model, (str, Path, nn.Module)):
        raise CompressbenchError(f"model must be a registered name, a saved model file or an nn.Module, got {type(model).__name__}")
    loaded = load_variant(model)
    return loaded.module, loaded.provenance, loaded.name


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
    :func:`compressbench.runtimes.profile.profile`; ``.to_json()`` gives what ``compressbench profile`` writes).
    ``input_shape`` defaults to (1, 3, 256, 256), or the shape a deployed file was compiled for."""
    module, _, label = _model_and_provenance(model)
    input_shape = input_shape or getattr(module, "input_shape", None) or (1, 3, 256, 256)
    settings.setdefault("name", label)
    settings.setdefault("show_progress", False)
    return profile_model(module, input_shape, **settings)


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
) -> tuple[SearchRecord, Variant | None]:
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
        loaded = load_variant(model)
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


load_model = _speaks_python(load_model)
load_variant = _speaks_python(load_variant)


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
    show_progress: bool = False,
    **options: Any,
) -> SensitivityRecord:
    """Per-layer int8 sensitivity of ``model`` (after ``chain``, if given) on ``runtime`` (openvino
    or onnxruntime) and the mixed precision that keeps the fewest layers float for an AKD within
    ``max_akd`` px of ``teacher`` (default: the model itself before the chain); see
    :mod:`compressbench.compression.sensitivity`. ``record.mixed.stage`` is the ``mixed`` stage to
    append to the chain; ``record.to_json()`` what ``compressbench sensitivity --output`` writes.
    ``name``: the model's label in the record (default: its registered name or file stem)."""
    _check_counts(frames=frames, calibration_frames=calibration_frames, repeats=repeats, input_size=input_size,
                  threads=threads)  # fmt: skip
    method = check_arguments(runtime, max_akd, calibration, float_precision)
    names = parse_chain(chain) if chain else []
    if options and not names:
        raise CompressbenchError(f"options {', '.join(sorted(options))} need a method chain (chain=)")
    per_stage = stage_options(names, options, {str(k): dict(v) for k, v in (stage or {}).items()}) if names else []
    source = FrameSource(data, frames, seed, input_size)
    module, start, label = _model_and_provenance(model)
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
