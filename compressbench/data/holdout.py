"""Evaluation and calibration frames that never overlap.

Synthetic data has disjoint splits: evaluation uses ``split="test"``, calibration (quantization
ranges, importance scores) ``split="train"``. A user folder or video has no splits, so its first
``eval_count`` frames are held out for evaluation and calibration reads the frames after them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compressbench.data.frames import load_frames
from compressbench.data.sources import SYNTHETIC, frames_for
from compressbench.errors import CompressbenchError


@dataclass(frozen=True)
class FrameSource:
    """Where frames come from: ``data`` is ``"synthetic"`` or a folder of images / a video file."""

    data: str = SYNTHETIC
    eval_count: int = 32
    seed: int = 0
    size: int = 256

    def evaluation(self):
        """The held-out frames (a FrameBatch) every variant is compared with the teacher on."""
        if self.eval_count <= 0:
            raise CompressbenchError(f"--frames must be a positive integer, got {self.eval_count}")
        if self.data == SYNTHETIC:
            return frames_for(self.data, self.eval_count, split="test", seed=self.seed, size=self.size)
        frames = load_frames(self.data, self.eval_count, size=self.size)
        if len(frames) < self.eval_count:
            raise CompressbenchError(f"{self.data} has {len(frames)} frames; --frames asks for {self.eval_count}")
        return frames

    def calibration(self, count: int) -> torch.Tensor:
        """``count`` frames (count, 3, S, S) the evaluation never sees, for methods that calibrate."""
        if self.data == SYNTHETIC:
            return frames_for(self.data, count, split="train", seed=self.seed, size=self.size).images
        frames = load_frames(self.data, self.eval_count + count, size=self.size)
        if len(frames) < self.eval_count + count:
            raise CompressbenchError(
                f"{self.data} has {len(frames)} frames, but {self.eval_count} are held out for evaluation and "
                f"calibration needs {count} more; give more frames or lower --frames"
            )
        return frames.images[self.eval_count :]
