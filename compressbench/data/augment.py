"""Augmentation of training frames for distillation, where the teacher is the label.

A student fine-tuned towards a teacher learns from the teacher's outputs, so an augmented frame is
labelled by running the teacher on it: every transform is then label-consistent, none has to be an
exact symmetry of the detector. (Transforming the teacher's labels analytically is cheaper but
wrong for a trained detector: its keypoint k on a mirrored face is not keypoint k mirrored, and
its keypoints follow an affine warp only approximately. ``benchmarks/recover_generalisation.py``
measures how far.)

Kinds (:data:`AUGMENTS`):

- ``none``: the frames as they are.
- ``flip``: each frame mirrored left-right with probability ``AugmentConfig.flip``.
- ``colour``: photometric jitter per frame: brightness, contrast, saturation and a colour cast.
- ``warp``: a random affine warp per frame (rotation, zoom, aspect, shear, shift; the image is
  reflected at its borders, as FOMM's equivariance warps are).
- ``full``: warp, then flip, then colour.

Every random number comes from the ``generator`` given, drawn in a fixed order, so one seed gives
one augmentation on any machine. Frames are (B, 3, H, W) floats in [0, 1]; shape, dtype and device
are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from compressbench.errors import CompressbenchError

AUGMENTS = ("none", "flip", "colour", "warp", "full")
_PARTS = {"none": (), "flip": ("flip",), "colour": ("colour",), "warp": ("warp",), "full": ("warp", "flip", "colour")}
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B in grey


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each part: uniform draws in [-x, x] (factors in [1 - x, 1 + x])."""

    flip: float = 0.5  # probability of a left-right mirror
    rotation_deg: float = 10.0
    zoom: float = 0.08  # scale factor in [1 - zoom, 1 + zoom]
    aspect: float = 0.04
    shear: float = 0.04
    shift: float = 0.06  # in normalised coordinates: 0.06 is 7.7 px of a 256-pixel frame
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    cast: float = 0.05  # per-channel gain


def check_augment(kind: str) -> None:
    if kind not in AUGMENTS:
        raise CompressbenchError(f"unknown augment {kind!r}; choose one of: {', '.join(AUGMENTS)}")


def _uniform(generator: torch.Generator, shape: tuple[int, ...], half_width: float) -> torch.Tensor:
    """Uniform draws in [-half_width, half_width] (float64, CPU)."""
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * half_width


def affine_matrices(batch: int, generator: torch.Generator, config: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """(B, 2, 3) float64 matrices [A | b] near the identity: the warped frame at p shows the frame at A p + b.

    A = R(angle) @ [[s (1 + a), s h], [0, s (1 - a)]], so a feature at q in the frame appears at
    A^-1 (q - b) in the warped one (its keypoint there, for an exactly equivariant detector)."""
    angle = _uniform(generator, (batch,), math.radians(config.rotation_deg))
    scale = 1 + _uniform(generator, (batch,), config.zoom)
    aspect = _uniform(generator, (batch,), config.aspect)
    shear = _uniform(generator, (batch,), config.shear)
    shift = _uniform(generator, (batch, 2), config.shift)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    zero = torch.zeros_like(scale)
    shape = torch.stack(
        [torch.stack([scale * (1 + aspect), scale * shear], -1), torch.stack([zero, scale * (1 - aspect)], -1)], -2
    )
    return torch.cat([rotation @ shape, shift[:, :, None]], dim=2)


def warp_frames(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample (B, C, H, W) frames: the result at pixel p is the frame at theta @ [p, 1] (normalised
    (x, y) coordinates, pixel centres as ``align_corners=False``; reflected at the borders)."""
    grid = F.affine_grid(theta.to(images.dtype).to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def flip_frames(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``images`` with the frames where ``mask`` (B,) is true mirrored left-right."""
    return torch.where(mask.to(images.device)[:, None, None, None], images.flip(-1), images)


def jitter_colour(
    images: torch.Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """Brightness, contrast (about the frame's mean grey), saturation (about each pixel's grey) and a
    per-channel cast, one draw of each per frame; clamped to [0, 1]."""
    batch = images.shape[0]

    def factor(half_width: float, *shape: int) -> torch.Tensor:
        return (1 + _uniform(generator, (batch, *shape), half_width)).to(images.dtype).to(images.device)

    brightness, contrast = factor(config.brightness, 1, 1, 1), factor(config.contrast, 1, 1, 1)
    saturation, cast = factor(config.saturation, 1, 1, 1), factor(config.cast, 3, 1, 1)
    luma = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    out = images * brightness
    grey = (out * luma).sum(1, keepdim=True)
    out = (out - grey.mean((2, 3), keepdim=True)) * contrast + grey.mean((2, 3), keepdim=True)
    grey = (out * luma).sum(1, keepdim=True)
    out = (out - grey) * saturation + grey
    return (out * cast).clamp(0, 1)


def augment_frames(
    images: torch.Tensor, kind: str, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """``images`` (B, 3, H, W, floats in [0, 1]) augmented by ``kind`` with draws from ``generator``."""
    check_augment(kind)
    if not images.is_floating_point() or images.dim() != 4 or images.shape[1] != 3:
        raise CompressbenchError(
            f"augment takes (B, 3, H, W) float frames in [0, 1], got {tuple(images.shape)} {images.dtype}"
        )
    out = images
    for part in _PARTS[kind]:
        if part == "warp":
            out = warp_frames(out, affine_matrices(len(out), generator, config))
        elif part == "flip":
            out = flip_frames(out, torch.rand(len(out), generator=generator) < config.flip)
        else:
            out = jitter_colour(out, generator, config)
    return out


__all__ = [
    "AUGMENTS",
    "AugmentConfig",
    "affine_matrices",
    "augment_frames",
    "check_augment",
    "flip_frames",
    "jitter_colour",
    "warp_frames",
]
