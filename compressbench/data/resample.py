"""Separable bilinear up-sampling as two small matrix products (faster on CPU than F.interpolate)."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=32)
def _weights(size_in: int, size_out: int, align_corners: bool) -> torch.Tensor:
    """(size_in, size_out) linear-interpolation weights, taken from F.interpolate itself."""
    return F.interpolate(torch.eye(size_in)[None], size=size_out, mode="linear", align_corners=align_corners)[0]


def upsample(x: torch.Tensor, size: int, align_corners: bool = False) -> torch.Tensor:
    """Bilinear resize of (..., h, w) to (..., size, size); equal to F.interpolate(mode='bilinear')."""
    rows = _weights(x.shape[-2], size, align_corners).to(x.dtype)
    cols = _weights(x.shape[-1], size, align_corners).to(x.dtype)
    return rows.T @ x @ cols
