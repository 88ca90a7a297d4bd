"""Relative timing: a model interleaved with a fixed reference workload (the "ruler")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.records import LatencySummary
from compressbench.regress.settings import CheckSettings
from compressbench.runtimes import RunRecord, RuntimeUnavailable, prepare
from compressbench.runtimes.deployed import runtime_for
from compressbench.runtimes.torch_runtime import torch_record

RULER = "hourglass-v2"  # stored in baselines: ratios to another ruler are not comparable
EAGER_FP32 = ("torch", "fp32")  # (runtime, precision) of baseline entries that record none (recorded before runtimes)


def _ruler_layers() -> nn.Module:
    """An encoder-decoder shaped like the teacher's hourglass (3x3 conv + BatchNorm + ReLU, 2x pooling
    down to 4x4 with 1024 channels, nearest up-sampling back), at the teacher's channel widths but
    written here with plain torch layers, so no change to compressbench's models can move it."""
    widths = [35, 64, 128, 256, 512, 1024]
    down = []
    for cin, cout in zip(widths, widths[1:]):
        down += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.AvgPool2d(2)]
    up = []
    for cin, cout in zip(widths[::-1], widths[::-1][1:]):
        up += [nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*down, *up)


def ruler() -> Callable[[], object]:
    """The fixed reference workload. A small cache-resident convolution tracked the machine's speed
    poorly: under a noisy neighbour the detectors (whose 57 MB of weights stream from memory at
    batch 1) slowed several percent more than it did, which read as a regression. A ruler with the
    teacher's shape of work (compute at high resolution, memory traffic in the wide layers) slows
    with the machine as the detectors do. Seeded weights; a 64x64 input as the teacher's hourglass sees."""
    generator = torch.Generator().manual_seed(1234)
    layers = _ruler_layers().eval()
    with torch.no_grad():
        for p in layers.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    x = torch.randn(1, 35, 64, 64, generator=generator)
    return lambda: layers(x)


def architecture_fingerprint(module: nn.Module) -> str:
    """Hash of the module tree's names and types (not widths): a pruned or wider teacher keeps the
    teacher's fingerprint, a student or a different network does not."""
    text = "\n".join(f"{name}:{type(m).__name__}" for name, m in module.named_modules())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Samples:
    """Raw timing samples of one model with the ruler, per round (never changed once taken)."""

    model_ms: tuple[float, ...]
    ruler_ms: tuple[float, ...]

    def __post_init__(self):
        object.__setattr__(self, "model_ms", tuple(self.model_ms))
        object.__setattr__(self, "ruler_ms", tuple(self.ruler_ms))

    @property
    def ratios(self) -> list[float]:
        return [m / r for m, r in zip(self.model_ms, self.ruler_ms)]

    def latency(self) -> LatencySummary:
        """The model's own latency over these rounds (ms; comparable on this kind of machine only)."""
        return LatencySummary.from_samples(self.model_ms)

    def to_dict(self) -> dict:
        return {"model_ms": list(self.model_ms), "ruler_ms": list(self.ruler_ms), "ratio": self.ratios}

    @classmethod
    def from_dict(cls, data: dict) -> Samples:
        return cls([float(v) for v in data["model_ms"]], [float(v) for v in data["ruler_ms"]])


def example_batch(settings: CheckSettings) -> torch.Tensor:
    generator = torch.Generator().manual_seed(settings.seed)
    return torch.rand(settings.batch, 3, settings.input_size, settings.input_size, generator=generator)


def timed_call(module: nn.Module, settings: CheckSettings, runtime: str = "torch", precision: str = "fp32",
               label: str = "the model") -> tuple[Callable[[], object], RunRecord]:  # fmt: skip
    """The zero-argument call a measurement times (``module`` on the example batch, on ``runtime`` at
    ``precision``) and the record of what runs. Prepared once: int8 calibrates and compiles here, not
    in every re-measurement. A model the runtime cannot take is a usage error naming ``label``."""
    module = module.eval()
    example = example_batch(settings)
    runtime = runtime_for(module, runtime)  # a deployed file is timed in its own runtime
    if (runtime, precision) == EAGER_FP32:
        # eager fp32 stays the plain call it always was (grad mode on, outside inference_mode): the
        # ratios of every baseline recorded before runtimes were recorded come from this call
        return (lambda: module(example)), torch_record(module, module, example, "fp32", settings.threads)
    try:
        with torch_threads(settings.threads):
            prepared = prepare(runtime, module, example, settings.threads, precision)
    except RuntimeUnavailable as exc:
        raise CompressbenchError(f"{label} cannot be measured on {runtime} {precision}: {exc}") from None
    return prepared, prepared.record


def measure_relative(
    module: nn.Module, settings: CheckSettings, on_round=None, call: Callable[[], object] | None = None
) -> Samples:
    """Time ``module`` and the ruler interleaved, round by round; ``call`` (from :func:`timed_call`)
    times ``module`` on another runtime, by default its eager fp32 call."""
    call = call or timed_call(module, settings)[0]
    with torch_threads(settings.threads):
        stats = measure_interleaved({"model": call, "ruler": ruler()}, settings.warmup, settings.repeats, on_round=on_round)
    return Samples(list(stats["model"].samples_ms), list(stats["ruler"].samples_ms))
