"""Benchmark suites: a TOML file that describes variants once, and building them (with a cache).

```toml
[measure]                      # how to measure (all optional)
batch = 1
threads = 2
repeats = 30
runtime = "openvino"           # torch | onnxruntime | openvino | executorch
precision = "bf16"             # fp32 | bf16 | int8

[[variant]]
name = "prune-0.5+quantize"
model = "teacher"              # registered name or saved model file (default: teacher)
config = "reduced.yaml"        # a FOMM YAML configuration for a registered model (optional)
method = "prune,quantize"      # a chain; omit for the model as it is
options = { ratio = 0.5 }      # common options, given to every stage that takes them
set = { quantize = { backend = "fx" } }   # per-stage options (by method name or 1-based index)
optional = true                # skip (with the reason in the results' notes) where it cannot run:
                               # its model file is missing, or a stage's back-end is unavailable here
```
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method, parse_chain, stage_options
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, read_error
from compressbench.models import MODELS
from compressbench.provenance import Variant, derive, load_variant, model_label, read_model_file, save_variant
from compressbench.runtimes.deployed import is_deployed

MEASURE_DEFAULTS = {
    "batch": 1,
    "threads": 2,
    "warmup": 10,
    "repeats": 30,
    "frames": 32,
    "calib": 64,
    "seed": 0,
    "input_size": 256,
    "runtime": "torch",  # a name of compressbench.runtimes.RUNTIMES
    "precision": "fp32",  # fp32 | bf16 | int8 (compressbench.runtimes.PRECISIONS)
    "data": "synthetic",
}


@dataclass(frozen=True)
class VariantSpec:
    """One variant of a suite: a model and, optionally, a compression chain with its options."""

    name: str
    model: str = "teacher"
    checkpoint: str | None = None
    config: str | None = None  # FOMM YAML for a registered model, e.g. a reduced teacher
    method: str | None = None
    options: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    optional: bool = False  # skipped (with a note) when its model file is missing or a stage cannot run here

    def key(self, build_settings: dict | None = None) -> str:
        """A stable hash of everything that determines the built variant: the spec and the suite's
        settings that change how it is built (calibration frames: count, source, seed, size)."""
        text = json.dumps({"spec": asdict(self), "build": build_settings or {}}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Suite:
    path: Path
    variants: list[VariantSpec]
    measure: dict
    skipped: dict[str, str] = field(default_factory=dict)  # optional variant -> why it was skipped

    def get(self, name: str) -> VariantSpec:
        for spec in self.variants:
            if spec.name == name:
                return spec
        raise CompressbenchError(
            f"unknown variant {name!r} in {self.path}; known: {', '.join(v.name for v in self.variants)}"
        )


def model_suite(models: list[str]) -> Suite:
    """A suite of ``models`` as they are (registered names, saved model files, or deployed files:
    .onnx, .xml, .pte, export folders), each a variant named by its label (its path where two labels
    clash), measured with the default [measure] settings: what ``compressbench baseline --model`` records."""
    labels = [model_label(m) for m in models]
    specs = []
    for model, label in zip(models, labels):
        spec = VariantSpec(name=label if labels.count(label) == 1 else str(model), model=str(model))
        why = missing_model(spec)
        if why:
            raise CompressbenchError(f"{why}; give a registered model, a saved model file or a deployed file (.onnx, .xml, .pte, an export folder)")
        specs.append(spec)
    if len({spec.name for spec in specs}) != len(specs):
        raise CompressbenchError(f"a model is given twice: {', '.join(models)}")
    return Suite(Path(", ".join(models)), specs, dict(MEASURE_DEFAULTS))


def read_suite(path: str | Path) -> Suite:
    """Parse and validate a suite file; every problem is one clear error."""
    path = check_input_file(path, "suite file")
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise read_error(path, exc, "suite file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"suite file {path} is not valid TOML: {exc}") from None
    measure = dict(MEASURE_DEFAULTS)
    given = doc.get("measure", {})
    if not isinstance(given, dict):
        raise CompressbenchError(f"suite file {path}: [measure] must be a table, got {type(given).__name__}")
    unknown = sorted(set(given) - set(MEASURE_DEFAULTS))
    if unknown:
        raise CompressbenchError(f"suite file {path}: unknown [measure] key(s) {', '.join(unknown)}; known: {', '.join(MEASURE_DEFAULTS)}")
    for key, value in given.items():
        _check_measure_value(path, key, value)
    measure.update(given)
    raw = doc.get("variant")
    if not isinstance(raw, list) or not raw:
        raise CompressbenchError(f"suite file {path} lists no [[variant]] entries")
    specs, seen, skipped = [], set(), {}
    allowed = set(VariantSpec.__dataclass_fields__)
    for i, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or "name" not in entry:
            raise CompressbenchError(f"suite file {path}: variant #{i} has no name")
        extra = sorted(set(entry) - allowed)
        if extra:
            raise CompressbenchError(f"suite file {path}: variant {entry['name']!r} has unknown key(s) {', '.join(extra)}")
        if entry["name"] in seen:
            raise CompressbenchError(f"suite file {path}: variant name {entry['name']!r} appears twice")
        seen.add(entry["name"])
        _check_variant_types(path, entry)
        spec = VariantSpec(**entry)
        given = [key for key in ("method", "config", "checkpoint") if getattr(spec, key)]
        if given and spec.model not in MODELS and is_deployed(spec.model):
            raise CompressbenchError(
                f"suite file {path}: variant {spec.name!r}: {spec.model} is a deployed file, measured as it is; "
                f"drop {', '.join(given)} (compress the model it was exported from)"
            )
        try:
            why = missing_model(spec) if spec.optional else None
            why = why or unavailable_stage(spec)
        except CompressbenchError as exc:  # a bad option, named with its variant before any work
            raise CompressbenchError(f"suite file {path}: variant {spec.name!r}: {exc}") from None
        if why and spec.optional:
            skipped[spec.name] = why
            continue
        if why:
            raise CompressbenchError(f"suite file {path}: variant {spec.name!r} cannot run here: {why} (or mark it optional = true)")
        specs.append(spec)
    if not specs:
        raise CompressbenchError(f"suite file {path}: every variant was skipped ({'; '.join(skipped.values())})")
    return Suite(path, specs, measure, skipped)


# what each variant key must hold (None: may be absent)
VARIANT_TYPES = {
    "name": str, "model": str, "checkpoint": str, "config": str, "method": str, "options": dict, "set": dict, "optional": bool,
}  # fmt: skip
NON_NEGATIVE_MEASURES = ("warmup",)


def missing_model(spec: VariantSpec) -> str | None:
    """Why ``spec``'s model cannot be loaded: neither a registered name nor an existing file (or
    export folder: a deployed model)."""
    if spec.model in MODELS or Path(spec.model).is_file() or Path(spec.model).is_dir():
        return None
    return f"model file {spec.model} does not exist"


def unavailable_stage(spec: VariantSpec) -> str | None:
    """Why a stage of ``spec``'s chain cannot run on this machine (its method says so, e.g.
    quantize's pt2e back-end without torchao), or None. Parses the options, so a bad one is an error."""
    if not spec.method:
        return None
    chain = parse_chain(spec.method)
    for name, options in zip(chain, stage_options(chain, _common(spec), _namespaced(spec.set))):
        why = get_method(name).unavailable(options)
        if why:
            return why
    return None


def _common(spec: VariantSpec) -> dict:
    return {k.replace("-", "_"): v for k, v in spec.options.items()}


def _check_measure_value(path: Path, key: str, value) -> None:
    expected = type(MEASURE_DEFAULTS[key])
    if expected is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise CompressbenchError(f"suite file {path}: [measure] {key} must be an integer, got {value!r}")
    if expected is str and not isinstance(value, str):
        raise CompressbenchError(f"suite file {path}: [measure] {key} must be a string, got {value!r}")
    if expected is int and (value < 0 if key in NON_NEGATIVE_MEASURES else value <= 0) and key != "seed":
        raise CompressbenchError(f"suite file {path}: [measure] {key} must be {'zero or more' if key in NON_NEGATIVE_MEASURES else 'positive'}, got {value}")


def _check_variant_types(path: Path, entry: dict) -> None:
    for key, value in entry.items():
        expected = VARIANT_TYPES[key]
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise CompressbenchError(
                f"suite file {path}: variant {entry['name']!r}: {key} must be a {expected.__name__}, got {value!r}"
            )


def suite_text(measure: dict, variants: list[VariantSpec], comment: str = "") -> str:
    """A suite file (what :func:`read_suite` reads) for ``variants`` measured with ``measure``
    ([measure] keys of :data:`MEASURE_DEFAULTS`); ``comment`` becomes its leading ``#`` lines."""
    import tomli_w

    unknown = sorted(set(measure) - set(MEASURE_DEFAULTS))
    if unknown:
        raise CompressbenchError(f"unknown [measure] key(s) {', '.join(unknown)}; known: {', '.join(MEASURE_DEFAULTS)}")
    defaults = VariantSpec(name="")
    entries = []
    for spec in variants:
        entry = {"name": spec.name}  # TOML has no null: absent keys take their defaults on reading
        for key in VARIANT_TYPES:
            value = getattr(spec, key)
            if key != "name" and value is not None and value != getattr(defaults, key):
                entry[key] = _without_none(value)
        entries.append(entry)
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return header + tomli_w.dumps({"measure": dict(measure), "variant": entries})


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def cache_dir() -> Path:
    """Where built variants are cached (``$COMPRESSBENCH_CACHE`` or ~/.cache/compressbench)."""
    root = os.environ.get("COMPRESSBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "compressbench")
    return Path(root) / "variants"


# [measure] keys that change how a variant is built (calibration frames, their size and seed)
BUILD_KEYS = ("calib", "data", "seed", "input_size", "frames")


def frame_source(measure: dict) -> FrameSource:
    """The suite's frames: held-out evaluation frames and, never overlapping them, calibration frames."""
    return FrameSource(str(measure["data"]), int(measure["frames"]), int(measure["seed"]), int(measure["input_size"]))


def build_variant(
    spec: VariantSpec, measure: dict, use_cache: bool = True, show_progress: bool = True, cache_hits: list[str] | None = None
) -> Variant:
    """The :class:`~compressbench.provenance.Variant` for ``spec`` (from the cache when built before
    with the same spec, the same build settings of ``measure`` and the same base weights; its name is
    then appended to ``cache_hits``)."""
    with torch.random.fork_rng():  # a model without trained weights is initialised the same every run
        torch.manual_seed(int(measure["seed"]))
        loaded = load_variant(spec.model, checkpoint=spec.checkpoint, config=spec.config)
    base_model, start = loaded.module, loaded.provenance
    if not spec.method:
        return Variant(spec.name, base_model, start)
    chain = parse_chain(spec.method)
    common = _common(spec)
    takes_calib = any("calib" in get_method(name).option_names() for name in chain)
    if takes_calib and "calib" not in common:
        common["calib"] = int(measure["calib"])  # [measure] calib: the default of every stage that calibrates
    options = stage_options(chain, common, _namespaced(spec.set))
    build_settings = {key: measure.get(key) for key in BUILD_KEYS}
    cached = cache_dir() / f"{spec.key(build_settings)}-{_weights_key(base_model)}.pt"
    if use_cache and cached.is_file():
        module, provenance, _ = read_model_file(cached)
        if cache_hits is not None:
            cache_hits.append(spec.name)
        return Variant(spec.name, module, provenance)
    frames = frame_source(measure)
    context = CompressionContext(
        calibration_frames=frames.calibration,
        calibration_stream=frames.calibration_at,
        input_shape=(1, 3, measure["input_size"], measure["input_size"]),
        seed=measure["seed"],
        show_progress=show_progress,
    )
    variant = derive(base_model, chain, options, context, provenance=start, name=spec.name)[-1]
    variant.name = spec.name
    if use_cache and start.rebuildable:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_variant(variant, cached)
    return variant


def _namespaced(values: dict) -> dict[str, dict]:
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise CompressbenchError("a variant's 'set' must map stage names to tables of options")
    return {str(k): {o.replace("-", "_"): v for o, v in opts.items()} for k, opts in values.items()}


def _weights_key(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]
