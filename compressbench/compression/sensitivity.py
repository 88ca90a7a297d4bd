"""Accuracy-aware int8: how much each layer's quantization costs in keypoints, and the fewest layers
to keep float so that the int8 model stays within an AKD bound.

For a model on an int8 runtime (``openvino`` or ``onnxruntime``: the two whose int8 can keep named
layers float, :mod:`compressbench.runtimes.layers`), every quantizable layer (a convolution or
matrix product in the exported graph; the teacher has 13) is measured twice against the reference
(the eager fp32 model, or the teacher a variant must agree with) on held-out evaluation frames,
calibrated on calibration frames the evaluation never sees (:class:`~compressbench.data.FrameSource`):

- ``akd_only_int8_px``: only this layer int8, every other op float (what its quantization costs alone);
- ``akd_all_but_px``: every layer int8 but this one (what keeping it float buys back).

The activation ranges are calibrated once per graph (:mod:`compressbench.runtimes.qdq`), so every
configuration quantizes the same graph with the same ranges and differs only in which layers stay
float; with every layer float the graph is the float graph, so the AKD is the runtime's fp32 AKD.

:func:`mixed_precision` starts from the all-int8 model and keeps layers float in the order of
``akd_int8 - akd_all_but`` (largest drop first), re-measuring after each addition (a layer whose
float does not lower the AKD is passed over), until the AKD is within the bound (if the pass ends
outside it, every analysed layer float is tried); then it tries to give back each layer added before
the last one (it keeps the layer only if the AKD leaves the bound without it), so the set it
returns is the smallest this greedy path finds, not a proven minimum. That is NNCF's accuracy-controlled quantization (the most
damaging ops back to float until the metric is within the bound) and AIMET's / MCT's per-layer
sensitivity ranking, with the keypoints' own metric. :func:`mixed_precision_stage` returns the
``mixed`` stage a chain appends to carry the result.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

import compressbench.metrics as metrics
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import macs_fvcore, try_count
from compressbench.profiling.environment import environment
from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.records import SENSITIVITY_FORMAT, check_items, check_sections
from compressbench.runtimes import RuntimeUnavailable, check_runtime, prepare
from compressbench.runtimes.layers import (
    FLOAT_PRECISIONS,
    WEIGHTED_ONNX_OPS,
    Int8Plan,
    check_layer_names,
    resolve_scope,
    set_plan,
    weighted_layers,
)
from compressbench.runtimes.nncf_int8 import METHOD as NNCF
from compressbench.runtimes.onnx import export_onnx_bytes, frozen_exports
from compressbench.runtimes.qdq import CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD

SENSITIVITY_RUNTIMES = ("openvino", "onnxruntime")
DEFAULT_CALIBRATION_FRAMES = 32
REFERENCE_CHUNK = 16


# -- the record ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer: its share of the model's MACs and the two AKDs (px) against the reference."""

    layer: str
    macs: int | None
    macs_share: float | None
    akd_only_int8_px: float | None  # only this layer int8 (None: not measured)
    akd_all_but_px: float  # every layer int8 but this one
    float_in_mixed: bool = False


@dataclass(frozen=True)
class MixedPrecision:
    """The greedy result: the layers kept float, the AKD (px) they give, each step's AKD, and the
    ``mixed`` stage that carries them (``stage``: append it to a chain). ``within_bound`` False:
    no mix is within the bound (the float model itself is not), and ``float_layers`` is the last
    set tried."""

    max_akd_px: float
    float_precision: str
    float_layers: list[str]
    akd_px: float
    within_bound: bool
    steps: list[dict]  # {"action": "start"|"add"|"drop", "layer", "float_layers" (tried), "akd_px", "kept"}
    stage: dict
    note: str | None = None


@dataclass(frozen=True)
class SensitivityRecord:
    """What ``compressbench sensitivity`` measured; ``to_json()`` is the file it writes."""

    model: str
    chain: list[str]
    reference: str
    runtime: str
    runtime_version: str
    calibration_method: str
    image_size: int
    eval_frames: int
    calibration_frames: int
    akd_fp32_px: float  # the model on the runtime in fp32: every layer float
    akd_int8_px: float  # every layer int8
    layers: list[LayerSensitivity]
    mixed: MixedPrecision
    latency_ms: dict | None  # {"fp32"|"int8"|"mixed": {"median", "p10", "p90", "iqr", "runs"}}, same interleaved run
    runs: dict  # the run records (what ran, read back) of fp32, int8 and the mix
    settings: dict  # threads, warmup, repeats, seed, data
    env: dict
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"format": SENSITIVITY_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, where: str = "sensitivity record") -> SensitivityRecord:
        found = data.get("format") if isinstance(data, dict) else None
        if found != SENSITIVITY_FORMAT:
            raise CompressbenchError(f"{where} is not a compressbench sensitivity record (format {found!r}, "
                                     f"expected {SENSITIVITY_FORMAT!r})")  # fmt: skip
        check_sections(data, RECORD_SCHEMA, where)
        check_items(data["layers"], dict, f"{where}: 'layers'")
        check_sections(data["mixed"], MIXED_SCHEMA, f"{where}: mixed")
        for index, layer in enumerate(data["layers"], start=1):
            check_sections(layer, LAYER_SCHEMA, f"{where}: layer {index}")
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        fields["layers"] = [LayerSensitivity(**{k: layer[k] for k in LayerSensitivity.__dataclass_fields__ if k in layer})
                            for layer in data["layers"]]  # fmt: skip
        fields["mixed"] = MixedPrecision(**{k: data["mixed"][k] for k in MixedPrecision.__dataclass_fields__ if k in data["mixed"]})
        return cls(**fields)


NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
RECORD_SCHEMA = {
    "model": str, "chain": list, "reference": str, "runtime": str, "runtime_version": str, "calibration_method": str,
    "image_size": int, "eval_frames": int, "calibration_frames": int, "akd_fp32_px": NUMBER, "akd_int8_px": NUMBER,
    "layers": list, "mixed": dict, "latency_ms": (dict, type(None)), "runs": dict, "settings": dict, "env": dict,
}  # fmt: skip
LAYER_SCHEMA = {"layer": str, "macs": (int, type(None)), "macs_share": OPTIONAL_NUMBER,
                "akd_only_int8_px": OPTIONAL_NUMBER, "akd_all_but_px": NUMBER, "float_in_mixed": bool}  # fmt: skip
MIXED_SCHEMA = {"max_akd_px": NUMBER, "float_precision": str, "float_layers": list, "akd_px": NUMBER,
                "within_bound": bool, "steps": list, "stage": dict}  # fmt: skip


# -- checks that run before any work -------------------------------------------------------------------


def check_arguments(runtime: str, max_akd: float, calibration_method: str | None = None,
                    float_precision: str = "fp32") -> str:  # fmt: skip
    """Validate what a sensitivity run needs before any long work; returns the calibration method."""
    if runtime not in SENSITIVITY_RUNTIMES:
        check_runtime(runtime)  # an unknown name lists the known ones
        raise CompressbenchError(
            f"--runtime {runtime}: sensitivity runs on {' or '.join(SENSITIVITY_RUNTIMES)}, whose int8 can keep "
            "named layers float; torch's and executorch's int8 cannot"
        )
    check_runtime(runtime, "int8")  # installed?
    if not (isinstance(max_akd, (int, float)) and not isinstance(max_akd, bool) and max_akd > 0 and math.isfinite(max_akd)):
        raise CompressbenchError(f"--max-akd must be a positive number of pixels, got {max_akd}")
    if float_precision not in FLOAT_PRECISIONS:
        raise CompressbenchError(f"--float-precision must be one of {', '.join(FLOAT_PRECISIONS)}, got {float_precision!r}")
    if float_precision == "bf16" and runtime != "openvino":
        raise CompressbenchError(f"--float-precision bf16 needs --runtime openvino; {runtime} has no bf16 CPU kernels")
    method = calibration_method or DEFAULT_CALIBRATION_METHOD
    known = CALIBRATION_METHODS + ((NNCF,) if runtime == "openvino" else ())
    if method not in known:
        raise CompressbenchError(f"unknown --calibration {method!r} for {runtime}; known: {', '.join(known)}")
    return method


# -- the layers ------------------------------------------------------------------------------------------


def quantizable_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """The weighted layers (:func:`~compressbench.runtimes.layers.weighted_layers`) that own a
    convolution or matrix product in ``model``'s ONNX export, in the graph's order."""
    graph = export_onnx_bytes(model, example[:1])
    import onnx

    nodes = onnx.load_from_string(graph).graph.node
    names = [n.name for n in nodes]
    first: dict[str, int] = {}
    for layer in weighted_layers(model):
        scope = resolve_scope(layer, names)
        if scope is None:
            continue
        positions = [i for i, n in enumerate(nodes) if n.name.startswith(scope) and n.op_type in WEIGHTED_ONNX_OPS]
        if positions:
            first[layer] = positions[0]
    # a layer inside another (a block that owns a weight and holds layers) is the inner ones' business
    kept = [n for n in first if not any(o != n and o.startswith(n + ".") for o in first)]
    return sorted(kept, key=first.get)


def units(model: nn.Module, example: torch.Tensor, names: list[str] | None) -> list[str]:
    """What is analysed, in graph order: every quantizable layer, or the ``names`` given (a layer, or
    a module holding layers, such as a block: its layers are then kept float or int8 together)."""
    found = quantizable_layers(model, example)
    if names is None:
        return found
    check_layer_names(model, names)

    def held(name: str) -> list[int]:
        return [i for i, layer in enumerate(found) if layer == name or layer.startswith(name + ".")]

    empty = [name for name in names if not held(name)]
    if empty:
        raise CompressbenchError(f"--layers: {', '.join(empty)} holds no convolution of the exported graph; "
                                 f"quantizable layers: {', '.join(found)}")  # fmt: skip
    nested = [(a, b) for a in names for b in names if a != b and b.startswith(a + ".")]
    if nested:
        raise CompressbenchError(f"--layers: {nested[0][1]} lies inside {nested[0][0]}; name one of them")
    return sorted(dict.fromkeys(names), key=lambda name: held(name)[0])


def layer_macs(model: nn.Module, example: torch.Tensor, layers: list[str]) -> tuple[dict[str, int | None], int | None]:
    """fvcore's MACs of each layer and of the whole model (None where fvcore cannot count)."""
    count, _ = try_count(macs_fvcore, model, example[:1])
    if count is None:
        return {name: None for name in layers}, None
    return {name: count.by_module.get(name) for name in layers}, count.total


# -- measuring ----------------------------------------------------------------------------------------------


def reference_keypoints(reference: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The reference's keypoints on ``images`` in eager PyTorch: what every int8 configuration is scored against."""
    with torch.inference_mode():
        return torch.cat([reference(images[i : i + REFERENCE_CHUNK])["value"].float()
                          for i in range(0, len(images), REFERENCE_CHUNK)])  # fmt: skip


class _Probe:
    """Runs ``model`` on the runtime at int8 with a plan, and returns the AKD of its keypoints
    against the reference's on the evaluation frames (and the prepared runner)."""

    def __init__(self, model, runtime, images, calibration, reference_value, threads, method, float_precision):
        self.model = copy.deepcopy(model).eval()  # one working copy whose plan changes between probes
        self.runtime, self.images, self.calibration = runtime, images, calibration
        self.reference_value, self.threads, self.float_precision = reference_value, threads, float_precision
        self.method = method
        self.batch = images[:1].contiguous()

    def _akd(self, prepared) -> float:
        with torch.inference_mode():
            value = prepared.outputs(self.images)["value"]
        return float(metrics.akd_px(value, self.reference_value, int(self.images.shape[-1])))

    def fp32(self):
        set_plan(self.model, Int8Plan())
        prepared = prepare(self.runtime, self.model, self.batch, self.threads, "fp32")
        return self._akd(prepared), prepared

    def int8(self, float_layers=(), only=None):
        set_plan(self.model, Int8Plan(tuple(float_layers), None if only is None else tuple(only), self.float_precision))
        try:
            prepared = prepare(self.runtime, self.model, self.batch, self.threads, "int8", self.calibration, self.method)
        except RuntimeUnavailable as exc:
            raise CompressbenchError(f"{self.runtime} int8 cannot run this model: {exc}") from None
        return self._akd(prepared), prepared


def _drops(int8_akd: float, layers: list[LayerSensitivity]) -> list[str]:
    """Layers by how much AKD keeping them float buys back, largest first (ties: graph order)."""
    order = {layer.layer: i for i, layer in enumerate(layers)}
    back = {layer.layer: int8_akd - layer.akd_all_but_px for layer in layers}
    return sorted(order, key=lambda name: (-back[name], order[name]))


def _greedy(probe: _Probe, int8_akd: float, layers: list[LayerSensitivity], max_akd: float,
            advance) -> tuple[list[str], float, list[dict], object]:  # fmt: skip
    """The layers kept float, the AKD they give, the steps, and the prepared runner of the mix
    (None when the all-int8 model is within the bound already)."""
    steps = [{"action": "start", "layer": None, "float_layers": [], "akd_px": int8_akd, "kept": True}]
    chosen: list[str] = []
    akd, prepared = int8_akd, None
    if metrics.within_bound(akd, max_akd):
        return chosen, akd, steps, None
    order = _drops(int8_akd, layers)
    for name in order:
        trial = [*chosen, name]
        trial_akd, trial_prepared = probe.int8(trial)
        kept = trial_akd < akd  # a layer whose float does not lower the AKD is not kept
        steps.append({"action": "add", "layer": name, "float_layers": trial, "akd_px": trial_akd, "kept": kept})
        advance(1, layer=name, akd_px=trial_akd)
        if kept:
            chosen, akd, prepared = trial, trial_akd, trial_prepared
        if metrics.within_bound(akd, max_akd):
            break
    if not metrics.within_bound(akd, max_akd) and len(chosen) < len(order):
        # the layers passed over may still help together: every analysed layer float
        trial_akd, trial_prepared = probe.int8(order)
        steps.append({"action": "add", "layer": None, "float_layers": list(order), "akd_px": trial_akd, "kept": True})
        chosen, akd, prepared = list(order), trial_akd, trial_prepared
    if not metrics.within_bound(akd, max_akd):
        return chosen, akd, steps, prepared
    for name in list(chosen[:-1])[::-1]:  # give back what the later additions made unnecessary
        trial = [c for c in chosen if c != name]
        trial_akd, trial_prepared = probe.int8(trial)
        kept = not metrics.within_bound(trial_akd, max_akd)
        steps.append({"action": "drop", "layer": name, "float_layers": trial, "akd_px": trial_akd, "kept": kept})
        advance(1, layer=name, akd_px=trial_akd)
        if not kept:
            chosen, akd, prepared = trial, trial_akd, trial_prepared
    return chosen, akd, steps, prepared


def mixed_stage(float_layers: list[str], float_precision: str = "fp32") -> dict:
    """The chain stage that carries a mix: ``{"method": "mixed", "options": {...}}``."""
    return {"method": "mixed", "options": {"float_layers": ",".join(float_layers), "float_precision": float_precision}}


def analyse_precision(
    model: nn.Module,
    runtime: str = "openvino",
    max_akd: float = 1.0,
    frames: FrameSource | None = None,
    *,
    reference: nn.Module | None = None,
    model_name: str = "model",
    reference_name: str | None = None,
    chain: list[str] | None = None,
    layers: list[str] | None = None,
    only_int8: bool = True,
    float_precision: str = "fp32",
    calibration_method: str | None = None,
    calibration_frames: int = DEFAULT_CALIBRATION_FRAMES,
    threads: int | None = None,
    latency: bool = True,
    warmup: int = 5,
    repeats: int = 20,
    show_progress: bool = True,
) -> SensitivityRecord:
    """Per-layer sensitivity of ``model`` on ``runtime`` int8 and the mixed precision that stays
    within ``max_akd`` px of ``reference`` (default: ``model`` itself, eager fp32); see the module
    docstring. ``frames``: evaluation frames to score on and calibration frames to calibrate on
    (default: 32 synthetic held-out frames at 256 px). ``layers``: analyse only these, each a layer
    or a block of them (default: every quantizable layer; the others stay int8 throughout).
    ``only_int8=False`` skips the "only this layer int8" pass (the mix needs only the other).
    ``latency``: time fp32, int8 and the mix interleaved on the same runtime (``warmup`` rounds,
    then ``repeats``)."""
    method = check_arguments(runtime, max_akd, calibration_method, float_precision)
    if calibration_frames <= 0 or warmup < 0 or repeats <= 0:
        raise CompressbenchError("--calibration-frames and --repeats must be positive and --warmup zero or more")
    frames = frames or FrameSource()
    evaluation = frames.evaluation()
    images = getattr(evaluation, "images", evaluation).float()
    calibration = frames.calibration(calibration_frames)
    model = model.eval()
    reference = (reference if reference is not None else model).eval()
    example = images[:1].contiguous()
    found = units(model, example, layers)
    if not found:
        raise CompressbenchError("the model has no quantizable layer (no convolution or matrix product in its export)")
    macs, total_macs = layer_macs(model, example, found)
    with torch_threads(threads) as threads_used, frozen_exports():  # one export of the probe's model
        reference_value = reference_keypoints(reference, images)
        probe = _Probe(model, runtime, images, calibration, reference_value, threads_used, method, float_precision)
        passes = 2 + len(found) * (2 if only_int8 else 1)
        with progress_bar(f"sensitivity on {runtime} int8", passes, show_progress) as advance:
            fp32_akd, fp32_run = probe.fp32()
            advance(1, step="fp32")
            int8_akd, int8_run = probe.int8()
            advance(1, step="int8", akd_px=int8_akd)
            rows: dict[str, dict] = {}
            for name in found:
                only_akd = probe.int8(float_layers=(), only=[name])[0] if only_int8 else None
                if only_int8:
                    advance(1, layer=name, akd_px=only_akd)
                all_but = probe.int8(float_layers=[name])[0]
                advance(1, layer=name, akd_px=all_but)
                rows[name] = {"akd_only_int8_px": only_akd, "akd_all_but_px": all_but}
        measured = [LayerSensitivity(name, macs.get(name), (macs[name] / total_macs) if macs.get(name) and total_macs else None,
                                     rows[name]["akd_only_int8_px"], rows[name]["akd_all_but_px"]) for name in found]  # fmt: skip
        with progress_bar("mixed precision: greedy", 2 * len(found) + 1, show_progress) as advance:
            chosen, mixed_akd, steps, mixed_run = _greedy(probe, int8_akd, measured, max_akd, advance)
        within = metrics.within_bound(mixed_akd, max_akd)
        if within and mixed_run is None:
            mixed_run = int8_run  # the all-int8 model is within the bound already
        latency_ms = None
        notes = ["the mix is the all-int8 model: no layer needs to stay float"] if within and not chosen else []
        if latency and within:
            fns = {"fp32": fp32_run, "int8": int8_run, **({"mixed": mixed_run} if mixed_run is not int8_run else {})}
            with progress_bar(f"timing fp32, int8 and the mix on {runtime}", repeats, show_progress) as advance:
                stats = measure_interleaved(fns, warmup, repeats, lambda _: advance())
            latency_ms = {name: s.to_dict() for name, s in stats.items()}
            latency_ms.setdefault("mixed", latency_ms["int8"])  # the mix is the all-int8 model
    note = None
    if not within:
        note = f"no mix is within {max_akd:g} px: with every analysed layer float the AKD is {mixed_akd:.4f} px"
        if not metrics.within_bound(fp32_akd, max_akd):
            note += f", and the model in fp32 on {runtime} gives {fp32_akd:.4f} px itself"
    mixed = MixedPrecision(float(max_akd), float_precision, chosen, mixed_akd, within, steps,
                           mixed_stage(chosen, float_precision) if within else {}, note)  # fmt: skip
    measured = [LayerSensitivity(**{**asdict(layer), "float_in_mixed": within and layer.layer in chosen}) for layer in measured]
    runs = {"fp32": fp32_run.record.to_dict(), "int8": int8_run.record.to_dict()}
    if within and mixed_run is not None:
        runs["mixed"] = mixed_run.record.to_dict()
    return SensitivityRecord(
        model=model_name, chain=list(chain or []), reference=reference_name or model_name, runtime=runtime,
        runtime_version=check_runtime(runtime).version(), calibration_method=method, image_size=int(images.shape[-1]),
        eval_frames=len(images), calibration_frames=len(calibration), akd_fp32_px=fp32_akd, akd_int8_px=int8_akd,
        layers=measured, mixed=mixed, latency_ms=latency_ms, runs=runs,
        settings={"threads": threads_used, "warmup": warmup, "repeats": repeats, "seed": frames.seed, "data": frames.data,
                  "only_int8_pass": only_int8, "layers_analysed": len(found)},
        env=environment(threads_used), notes=notes,
    )  # fmt: skip


def mixed_precision_stage(
    model: nn.Module,
    runtime: str,
    max_akd: float,
    frames: FrameSource | None = None,
    **options: Any,
) -> dict | None:
    """The ``mixed`` stage (``{"method": "mixed", "options": {...}}``) that keeps the fewest layers
    of ``model`` float on ``runtime`` int8 for an AKD within ``max_akd`` px, to append to the chain
    ``model`` came from; None when no mix is within the bound. ``options`` go to
    :func:`analyse_precision` (``reference=`` the teacher when ``model`` is a variant of it;
    ``only_int8`` and ``latency`` default to False here: the search times candidates itself)."""
    options.setdefault("only_int8", False)
    options.setdefault("latency", False)
    options.setdefault("show_progress", False)
    record = analyse_precision(model, runtime, max_akd, frames, **options)
    return record.mixed.stage if record.mixed.within_bound else None
