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
method = "prune,quantize"      # a chain; omit for the model as it is
options = { ratio = 0.5 }      # common options, given to every stage that takes them
set = { quantize = { backend = "fx" } }   # per-stage options (by method name or 1-based index)
```
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib
from torch import nn

from compressbench.errors import CompressbenchError

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
    method: str | None = None
    options: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    optional: bool = False  # skipped (with a note) when its model file does not exist

    def key(self) -> str:
        """A stable hash of everything that determines the built variant."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Suite:
    path: Path
    variants: list[VariantSpec]
    measure: dict
    skipped: list[str] = field(default_factory=list)

    def get(self, name: str) -> VariantSpec:
        for spec in self.variants:
            if spec.name == name:
                return spec
        raise CompressbenchError(
            f"unknown variant {name!r} in {self.path}; known: {', '.join(v.name for v in self.variants)}"
        )


def read_suite(path: str | Path) -> Suite:
    """Parse and validate a suite file; every problem is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise CompressbenchError(f"suite file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"suite file {path} is not valid TOML: {exc}") from None
    measure = dict(MEASURE_DEFAULTS)
    unknown = sorted(set(doc.get("measure", {})) - set(MEASURE_DEFAULTS))
    if unknown:
        raise CompressbenchError(f"suite file {path}: unknown [measure] key(s) {', '.join(unknown)}; known: {', '.join(MEASURE_DEFAULTS)}")
    measure.update(doc.get("measure", {}))
    raw = doc.get("variant")
    if not isinstance(raw, list) or not raw:
        raise CompressbenchError(f"suite file {path} lists no [[variant]] entries")
    specs, seen, skipped = [], set(), []
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
        spec = VariantSpec(**entry)
        if spec.optional and not Path(spec.model).is_file():
            skipped.append(spec.name)
            continue
        specs.append(spec)
    if not specs:
        raise CompressbenchError(f"suite file {path}: every variant was skipped (optional model files missing)")
    return Suite(path, specs, measure, skipped)


def cache_dir() -> Path:
    """Where built variants are cached (``$COMPRESSBENCH_CACHE`` or ~/.cache/compressbench)."""
    root = os.environ.get("COMPRESSBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "compressbench")
    return Path(root) / "variants"


def build_variant(spec: VariantSpec, measure: dict, use_cache: bool = True, show_progress: bool = True):
    """The :class:`~compressbench.compression.Variant` for ``spec`` (from the cache when built before)."""
    from compressbench.compression import CompressionContext, Variant, compress, save_variant, stage_options
    from compressbench.compression.chain import parse_chain
    from compressbench.models import load_model

    base_model = load_model(spec.model, checkpoint=spec.checkpoint)
    if not spec.method:
        return Variant(spec.name, base_model, [], False, {"model": spec.model})
    chain = parse_chain(spec.method)
    options = stage_options(chain, {k.replace("-", "_"): v for k, v in spec.options.items()}, _namespaced(spec.set))
    cached = cache_dir() / f"{spec.key()}-{_weights_key(base_model)}.pt"
    if use_cache and cached.is_file():
        from compressbench.models.checkpoint import read_checkpoint
        from compressbench.models.saved import load_saved_model

        payload = read_checkpoint(cached)
        module, meta = load_saved_model(cached, payload)
        args = payload["builder_args"]  # the stages with their structures, and the base model
        return Variant(spec.name, module, args["stages"], bool(meta.get("int8")), args["base"])
    context = CompressionContext(
        calibration_frames=_calibration_frames(measure),
        input_shape=(1, 3, measure["input_size"], measure["input_size"]),
        seed=measure["seed"],
        show_progress=show_progress,
    )
    from compressbench.comparison import origin_of

    origin = origin_of(spec.model, base_model)  # a registered model (by name or saved with its config)
    variant = compress(base_model, chain, options, context, base=origin.base, name=spec.name)[-1]
    variant.name = spec.name
    if use_cache and origin.base and not origin.stages:
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


def _calibration_frames(measure: dict):
    from compressbench.data import frames_for

    def frames(count: int):
        return frames_for(measure["data"], count, split="train", seed=measure["seed"], size=measure["input_size"]).images

    return frames
