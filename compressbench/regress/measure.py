"""Relative timing: a model interleaved with a fixed reference workload (the "ruler")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.regress.settings import CheckSettings


def ruler() -> Callable[[], object]:
    """The fixed reference workload: seeded 3x3 convolutions over a 64x64 map (a few ms).

    It is built from the same kind of kernels the detectors spend their time in, so a machine that
    is slower (or busier) for convolutions slows the ruler in proportion."""
    generator = torch.Generator().manual_seed(1234)
    layers = nn.Sequential(
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 32, 3, padding=1)
    ).eval()
    with torch.no_grad():
        for p in layers.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    x = torch.randn(1, 32, 64, 64, generator=generator)
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
