"""Pick the frames a command works on: ``synthetic`` or a user folder / video."""

from __future__ import annotations

from compressbench.data.batch import FrameBatch
from compressbench.data.frames import load_frames
from compressbench.data.synthetic import synthetic_frames

SYNTHETIC = "synthetic"


def frames_for(data: str, count: int, split: str = "test", seed: int = 0, size: int = 256) -> FrameBatch:
    """``synthetic`` -> :func:`synthetic_frames`; anything else is a path for :func:`load_frames`
    (``split`` and ``seed`` only apply to synthetic frames)."""
    if str(data) == SYNTHETIC:
        return synthetic_frames(count, split=split, seed=seed, size=size)
    return load_frames(data, count=count, size=size)
