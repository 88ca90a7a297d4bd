"""The search's precision pass: mixed precision for the candidates that int8 alone pushes out of the bound.

The search trains and selects on validation AKD in eager fp32: the runtime's int8 is a train-free
tail, quantized when a candidate is timed. But int8 moves the keypoints too (0.05 px for the
20-minute search's winner on OpenVINO, ``benchmarks/results/amd-epyc-avx512/sensitivity-winner20-openvino.json``),
so a candidate just inside the bound in fp32 can end just outside it in int8. On a runtime whose
int8 can keep layers float (OpenVINO, ONNX Runtime), before the final timing:

1. the candidates within the bound on validation are run on the runtime in int8, fastest first, on
   the same validation frames and the same calibration as the final timing; the first one within
   the bound there ends the pass (no slower candidate can beat it);
2. each faster one outside it (at most :data:`MIXED_ANALYSES`, fastest first) gets the mixed
   precision of :mod:`compressbench.compression.sensitivity` on those frames: the fewest layers
   kept float for a validation AKD within the bound;
3. each mix found becomes a candidate of its own (``<name>+mixed``, the ``mixed`` stage appended),
   timed in the final run beside the others, where the held-out frames decide as for any candidate.

That is NNCF's accuracy-controlled quantization (the most damaging layers back to float until the
metric is within the bound) as one more candidate of the search, with the keypoints' own metric.
The validation frames are also the int8 calibration frames (both are the first calibration frames):
the mix is chosen on frames the int8 ranges saw, and judged on held-out frames that nothing saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

import compressbench.metrics as metrics
from compressbench.compression.sensitivity import SENSITIVITY_RUNTIMES, analyse_precision, reference_keypoints
from compressbench.profiling.timing import torch_threads
from compressbench.progress import progress_bar
from compressbench.runtimes import RuntimeUnavailable, prepare

# Each analysis builds the model on the runtime in int8 about 15 to 20 times (every layer float in
# turn, then the greedy path), seconds each: the pass analyses the fastest few, not every candidate.
MIXED_ANALYSES = 2
MIXED_SUFFIX = "+mixed"


@dataclass(frozen=True)
class ValidationFrames:
    """The frames the pass judges on, in the shape :func:`analyse_precision` reads a frame source."""

    images: torch.Tensor
    calibration_images: torch.Tensor
    seed: int = 0
    data: str = "synthetic"

    def evaluation(self) -> torch.Tensor:
        return self.images

    def calibration(self, count: int) -> torch.Tensor:
        return self.calibration_images[:count]


@dataclass(frozen=True)
class Contender:
    """A candidate as the pass sees it: within the bound on validation in eager fp32."""

    name: str
    module: nn.Module
    latency_ms: float


@dataclass(frozen=True)
class MixedFound:
    """A mix the pass found: the stage to append to ``parent``'s chain and its validation AKDs."""

    parent: str
    stage: dict
    int8_val_akd_px: float
    mixed_val_akd_px: float

    @property
    def name(self) -> str:
        return self.parent + MIXED_SUFFIX


@dataclass
class PrecisionPass:
    """What the pass did: the mixes found, a log entry per candidate it looked at, its seconds."""

    found: list[MixedFound] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def skip_reason(runtime: str, precision: str, methods: tuple[str, ...]) -> str | None:
    """Why the pass does not run for this search (None: it runs)."""
    if "mixed" not in methods:
        return "mixed is not among --methods"
    if precision != "int8" or runtime.partition(":")[0] not in SENSITIVITY_RUNTIMES:
        return f"{runtime} {precision} cannot keep layers float; mixed precision needs {' or '.join(SENSITIVITY_RUNTIMES)} int8"
    return None


def precision_pass(
    contenders: list[Contender],
    teacher: nn.Module,
    runtime: str,
    max_akd: float,
    frames: ValidationFrames,
    threads: int | None = None,
    show_progress: bool = True,
    analyses: int = MIXED_ANALYSES,
) -> PrecisionPass:
    """Run the pass over ``contenders`` (see the module docstring); they are sorted here, fastest first."""
    started = time.perf_counter()
    done = PrecisionPass()
    ordered = sorted(contenders, key=lambda c: c.latency_ms)
    outside: list[tuple[Contender, float]] = []
    images = frames.images.float()
    calibration = frames.calibration_images
    with torch_threads(threads) as threads_used:
        reference = reference_keypoints(teacher.eval(), images)
        with progress_bar(f"precision pass: candidates on {runtime} int8, validation frames", len(ordered), show_progress) as advance:
            for contender in ordered:
                try:
                    prepared = prepare(runtime, contender.module.eval(), images[:1].contiguous(), threads_used, "int8", calibration)
                except RuntimeUnavailable as exc:
                    done.log.append({"candidate": contender.name, "steps": 0, "skipped": f"precision pass: {runtime} int8 cannot run it ({exc})"})
                    advance(1, candidate=contender.name)
                    continue
                with torch.inference_mode():
                    value = prepared.outputs(images)["value"]
                akd = float(metrics.akd_px(value, reference, int(images.shape[-1])))
                advance(1, candidate=contender.name, akd_px=akd)
                if metrics.within_bound(akd, max_akd):
                    done.log.append({"candidate": contender.name, "steps": 0, "precision": (
                        f"int8 on validation {akd:.3f} px: within {max_akd:g} px, so no slower candidate needs a mix")})
                    break
                outside.append((contender, akd))
    for contender, akd in outside[:analyses]:
        record = analyse_precision(
            contender.module, runtime, max_akd, frames, reference=teacher, only_int8=False, latency=False,
            calibration_frames=len(calibration), threads=threads, show_progress=show_progress, model_name=contender.name,
        )  # fmt: skip
        if record.mixed.within_bound:
            found = MixedFound(contender.name, record.mixed.stage, akd, record.mixed.akd_px)
            done.found.append(found)
            done.log.append({"candidate": found.name, "steps": 0, "precision": (
                f"int8 on validation {akd:.3f} px; with {', '.join(record.mixed.float_layers)} float "
                f"{record.mixed.akd_px:.3f} px: a candidate of its own")})  # fmt: skip
        else:
            done.log.append({"candidate": contender.name, "steps": 0, "precision": (
                f"int8 on validation {akd:.3f} px; no mix within {max_akd:g} px ({record.mixed.note})")})
    for contender, akd in outside[analyses:]:
        done.log.append({"candidate": contender.name, "steps": 0, "precision": (
            f"int8 on validation {akd:.3f} px; not analysed: the pass analyses the {analyses} fastest")})
    done.seconds = time.perf_counter() - started
    return done
