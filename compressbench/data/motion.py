"""Unit-cube draws for one frame or one clip: who the face is, its pose and expression, the backdrop.

Independent frames draw everything afresh. A clip keeps identity, backdrop and lighting, and moves
pose and expression smoothly: a smoothstep drift between two nearby poses (head turns, nods, tilts),
an occasional blink (a short Gaussian dip of eye openness) and talking (a slow sinusoidal jaw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from compressbench.data.background import BACKGROUND, GRID_VALUES, LIGHTING
from compressbench.data.faces import EXPRESSION, IDENTITY
from compressbench.data.params import ParamSpace

POSE = ParamSpace.of(
    rotation=(-0.3, 0.3),
    scale=(0.95, 1.3),
    aspect=(-0.06, 0.06),
    shear=(-0.06, 0.06),
    place_x=(0.15, 0.85),
    place_y=(0.15, 0.85),
)
DYNAMIC = ParamSpace(POSE.ranges + EXPRESSION.ranges)
STATIC_DIM = IDENTITY.dim + BACKGROUND.dim + GRID_VALUES + LIGHTING.dim
TPS_POINTS = 5  # control points per side, as in FOMM's random thin-plate-spline transforms
TPS_DIM = TPS_POINTS * TPS_POINTS * 2

CLIP_DRIFT = 0.25  # how far (in unit range) pose and expression travel over one clip
BLINK_PROBABILITY = 0.6
BLINK_WIDTH = 0.8  # frames (standard deviation of the dip)
_EYE, _MOUTH = DYNAMIC.index("eye_open"), DYNAMIC.index("mouth_open")


@dataclass(frozen=True)
class FrameDraw:
    """Unit values for one frame: ``static`` (identity, backdrop, lighting), ``dynamic``
    (pose + expression), ``tps`` in [-1, 1], and the seed of its sensor noise."""

    static: torch.Tensor
    dynamic: torch.Tensor
    tps: torch.Tensor
    noise_seed: int


def _noise_seeds(generator: torch.Generator, count: int) -> list[int]:
    return torch.randint(0, 2**62, (count,), generator=generator).tolist()


def _shape_expression(dynamic: torch.Tensor) -> torch.Tensor:
    """Skew openness draws: eyes are mostly open, mouths mostly closed."""
    dynamic = dynamic.clone()
    dynamic[..., _EYE] = 1 - dynamic[..., _EYE] ** 4
    dynamic[..., _MOUTH] = dynamic[..., _MOUTH] ** 2
    return dynamic


def independent_draw(generator: torch.Generator) -> FrameDraw:
    """Everything about one frame, fresh."""
    static = torch.rand(STATIC_DIM, generator=generator)
    dynamic = _shape_expression(torch.rand(DYNAMIC.dim, generator=generator))
    tps = torch.rand(TPS_DIM, generator=generator) * 2 - 1
    return FrameDraw(static, dynamic, tps, _noise_seeds(generator, 1)[0])


def clip_draws(generator: torch.Generator, length: int) -> list[FrameDraw]:
    """``length`` consecutive frames of one face moving smoothly."""
    static = torch.rand(STATIC_DIM, generator=generator)
    start = _shape_expression(torch.rand(DYNAMIC.dim, generator=generator))
    end = (start + CLIP_DRIFT * (2 * torch.rand(DYNAMIC.dim, generator=generator) - 1)).clamp(0, 1)
    tps_start = torch.rand(TPS_DIM, generator=generator) * 2 - 1
    tps_end = 0.7 * tps_start + 0.3 * (torch.rand(TPS_DIM, generator=generator) * 2 - 1)
    blink, blink_time, talk, talk_freq, talk_phase = torch.rand(5, generator=generator).tolist()
    blink_time *= length - 1
    talk_freq = 0.05 + 0.12 * talk_freq  # cycles per frame: a few frames per syllable
    seeds = _noise_seeds(generator, length)
    frames = []
    for t in range(length):
        s = t / max(length - 1, 1)
        s = s * s * (3 - 2 * s)  # smoothstep: starts and stops gently
        dynamic = start + (end - start) * s
        if blink < BLINK_PROBABILITY:
            dynamic[_EYE] = dynamic[_EYE] * (1 - 0.95 * math.exp(-(((t - blink_time) / BLINK_WIDTH) ** 2)))
        dynamic[_MOUTH] = talk * (0.5 - 0.5 * math.cos(2 * math.pi * (talk_freq * t + talk_phase)))
        frames.append(FrameDraw(static, dynamic, tps_start + (tps_end - tps_start) * s, seeds[t]))
    return frames
