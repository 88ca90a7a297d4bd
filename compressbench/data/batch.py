"""The batch of frames every consumer (training, metrics, distillation, calibration) receives."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

SPLITS = ("train", "val", "test")


@dataclass
class FrameBatch:
    """Frames plus, for synthetic data, ground-truth landmarks and jacobians.

    ``images`` is (N, 3, S, S) float32 in [0, 1]; ``landmarks`` (N, K, 2) holds (x, y) in [-1, 1]
    (pixel position = (u + 1) / 2 * S); ``jacobians`` (N, K, 2, 2) is d(image)/d(canonical) at each
    landmark. Both are None for user frames. ``skipped`` counts unreadable user files.
    """

    images: torch.Tensor
    landmarks: torch.Tensor | None = None
    jacobians: torch.Tensor | None = None
    skipped: int = 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def slice(self, start: int, stop: int) -> FrameBatch:
        """Frames ``start:stop`` (views, no copy)."""
        return replace(
            self,
            images=self.images[start:stop],
            landmarks=None if self.landmarks is None else self.landmarks[start:stop],
            jacobians=None if self.jacobians is None else self.jacobians[start:stop],
        )

    def to(self, device: torch.device | str) -> FrameBatch:
        """The same batch on ``device``."""
        return replace(
            self,
            images=self.images.to(device),
            landmarks=None if self.landmarks is None else self.landmarks.to(device),
            jacobians=None if self.jacobians is None else self.jacobians.to(device),
        )
