"""A batched RGBA canvas and anti-aliased soft shapes, evaluated with torch on texel grids.

Shapes return a coverage in [0, 1] from a signed distance (exact for circles and half-planes, a
first-order estimate (f - 1) / |grad f| for ellipses) ramped over one texel, so edges are smooth
and centroids are unbiased. Painting happens only inside a window around each shape, which keeps
small features cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from compressbench.data.warps import pixel_centres


@dataclass(frozen=True)
class Window:
    """A rectangle of texels: row/column slices plus their canonical coordinates, broadcastable
    against (B, 1, h, w): ``x`` is (1, 1, 1, w) and ``y`` is (1, 1, h, 1)."""

    rows: slice
    cols: slice
    x: torch.Tensor
    y: torch.Tensor


def _column(value: torch.Tensor | float) -> torch.Tensor | float:
    """(B,) -> (B, 1, 1, 1) so per-frame parameters broadcast over a window."""
    return value[:, None, None, None] if isinstance(value, torch.Tensor) else value


def ellipse(win: Window, cx, cy, rx, ry, edge: float, angle=None) -> torch.Tensor:
    """Coverage (B, 1, h, w) of ellipses centred (cx, cy) with radii (rx, ry), rotated by ``angle``."""
    dx, dy = win.x - _column(cx), win.y - _column(cy)
    if angle is not None:
        cos, sin = _column(torch.cos(angle)), _column(torch.sin(angle))
        dx, dy = dx * cos + dy * sin, dy * cos - dx * sin
    rx2, ry2 = _column(rx) ** 2, _column(ry) ** 2
    f = dx * dx / rx2 + dy * dy / ry2
    grad = 2 * torch.sqrt((dx / rx2) ** 2 + (dy / ry2) ** 2) + 1e-9
    return (0.5 - (f - 1) / (grad * edge)).clamp_(0, 1)


def circle(win: Window, cx, cy, radius, edge: float) -> torch.Tensor:
    """Coverage (B, 1, h, w) of discs (exact signed distance)."""
    dx, dy = win.x - _column(cx), win.y - _column(cy)
    distance = torch.sqrt(dx * dx + dy * dy)
    return (0.5 - (distance - _column(radius)) / edge).clamp_(0, 1)


def below(win: Window, level, edge: float) -> torch.Tensor:
    """Coverage of the half-plane y > ``level`` (``level`` broadcastable to the window)."""
    return (0.5 + (win.y - level) / edge).clamp_(0, 1)


class Canvas:
    """Premultiplied RGB plus alpha on a (B, size, size) texel grid covering [-1, 1]^2.

    Texel i sits at (2i + 1) / size - 1, the ``grid_sample(align_corners=False)`` convention, so a
    canonical coordinate can be used directly as a sampling-grid value.
    """

    def __init__(self, batch: int, size: int, dtype: torch.dtype = torch.float32) -> None:
        self.size = size
        self.edge = 2.0 / size
        self.axis = pixel_centres(size, dtype)
        self.colour = torch.zeros(batch, 3, size, size, dtype=dtype)
        self.alpha = torch.zeros(batch, 1, size, size, dtype=dtype)

    def _index(self, value: float, upper: bool) -> int:
        texel = (value + 1) / 2 * self.size
        index = math.ceil(texel) if upper else math.floor(texel)
        return min(max(index, 0), self.size)

    def window(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> Window:
        """The texels covering canonical box [x_lo, x_hi] x [y_lo, y_hi] (plus one texel of margin)."""
        margin = 2 * self.edge
        cols = slice(self._index(x_lo - margin, False), self._index(x_hi + margin, True))
        rows = slice(self._index(y_lo - margin, False), self._index(y_hi + margin, True))
        return Window(rows, cols, self.axis[cols].view(1, 1, 1, -1), self.axis[rows].view(1, 1, -1, 1))

    def around(self, cx: torch.Tensor, cy: torch.Tensor, extent_x, extent_y) -> Window:
        """A window holding every frame's box centre +- extent (tensors or floats)."""
        return self.window(
            float((cx - extent_x).min()),
            float((cx + extent_x).max()),
            float((cy - extent_y).min()),
            float((cy + extent_y).max()),
        )

    def full(self) -> Window:
        return self.window(-1.0, 1.0, -1.0, 1.0)

    def paint(self, win: Window, coverage: torch.Tensor, colour: torch.Tensor) -> None:
        """Composite ``colour`` ((B, 3) or (B, 3, h, w)) over the canvas with ``coverage`` (B, 1, h, w)."""
        if colour.dim() == 2:
            colour = colour[:, :, None, None]
        region = self.colour[:, :, win.rows, win.cols]
        region.mul_(1 - coverage).add_(colour * coverage)
        self.alpha[:, :, win.rows, win.cols].mul_(1 - coverage).add_(coverage)
