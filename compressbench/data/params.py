"""Named parameter ranges decoded from unit-cube samples, and colour palettes.

Scenes are drawn as vectors in [0, 1]^D (one generator call per frame, so a frame does not depend
on what else is in its batch); a :class:`ParamSpace` turns them into named physical values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ParamSpace:
    """Ordered ``name -> (low, high)`` ranges; ``decode`` maps unit values linearly into them."""

    ranges: tuple[tuple[str, float, float], ...]

    @classmethod
    def of(cls, **ranges: tuple[float, float]) -> ParamSpace:
        return cls(tuple((name, float(lo), float(hi)) for name, (lo, hi) in ranges.items()))

    @property
    def dim(self) -> int:
        return len(self.ranges)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.ranges]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def decode(self, unit: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, dim) values in [0, 1] -> ``{name: (B,) tensor}``."""
        return {name: lo + (hi - lo) * unit[:, i] for i, (name, lo, hi) in enumerate(self.ranges)}


def palette(unit: torch.Tensor, anchors: list[tuple[float, float, float]]) -> torch.Tensor:
    """Piecewise-linear colour ramp: (B,) values in [0, 1] -> (B, 3) colours between ``anchors``."""
    table = torch.tensor(anchors, dtype=unit.dtype)
    position = unit.clamp(0, 1) * (len(anchors) - 1)
    low = position.floor().long().clamp(max=len(anchors) - 2)
    frac = (position - low)[:, None]
    return table[low] * (1 - frac) + table[low + 1] * frac
