"""Relative timing: a model interleaved with a fixed reference workload (the "ruler")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.regress.settings import CheckSettings

RULER = "hourglass-v2"  # stored in baselines: ratios to another ruler are not comparable


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


@dataclass
class Samples:
    """Raw timing samples of one model with the ruler, per round."""

    model_ms: list[float]
    ruler_ms: list[float]

    @property
    def ratios(self) -> list[float]:
        return [m / r for m, r in zip(self.model_ms, self.ruler_ms)]

    def to_dict(self) -> dict:
        return {"model_ms": self.model_ms, "ruler_ms": self.ruler_ms, "ratio": self.ratios}

    @classmethod
    def from_dict(cls, data: dict) -> Samples:
        return cls([float(v) for v in data["model_ms"]], [float(v) for v in data["ruler_ms"]])


def measure_relative(module: nn.Module, settings: CheckSettings, on_round=None) -> Samples:
    """Time ``module`` and the ruler interleaved, round by round."""
    generator = torch.Generator().manual_seed(settings.seed)
    example = torch.rand(settings.batch, 3, settings.input_size, settings.input_size, generator=generator)
    module = module.eval()
    with torch_threads(settings.threads):
        stats = measure_interleaved(
            {"model": lambda: module(example), "ruler": ruler()}, settings.warmup, settings.repeats, on_round=on_round
        )
    return Samples(list(stats["model"].samples_ms), list(stats["ruler"].samples_ms))
