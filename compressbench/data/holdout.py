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
from compressbench.data.synthetic import synthetic_frames
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

    def calibration_at(self, start: int, count: int) -> torch.Tensor:
        """Calibration frames ``start .. start + count - 1``: ``calibration(start + count)[start:]``
        without holding the frames before ``start``, so a training pool can stream through many
        more frames than it holds. Synthetic frames never run out (they are bit for bit those of
        ``calibration`` where ``start`` is a multiple of 16, the renderer's chunk; elsewhere a few
        pixels of a soft shape edge can differ, as they do between counts); a folder or video gives
        fewer (none past its end)."""
        if not isinstance(start, int) or start < 0 or not isinstance(count, int) or count <= 0:
            raise CompressbenchError(f"calibration frames start at a non-negative index and count at least one, got {start}, {count}")
        if self.data == SYNTHETIC:
            # quiet: a pool refresh reads these while training shows its own progress
            return synthetic_frames(
                count, split="train", seed=self.seed, size=self.size, start=start, show_progress=False
            ).images
        return load_frames(self.data, count, size=self.size, start=self.eval_count + start).images
