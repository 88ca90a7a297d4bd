"""The teacher's training losses: supervised (landmarks, jacobians) and FOMM's equivariance.

Equivariance (FOMM, section 3.3): warp a frame with a random transform T, so that the warped
frame at p shows the frame at T(p). A keypoint x_w found in the warped frame is then the
keypoint T(x_w) of the frame, and its local frame maps to the frame's through the jacobian of T:

    value:    | kp(frame) - T(kp(warped)) |                                   (L1)
    jacobian: | I - J(frame)^-1 . J_T(kp(warped)) . J(warped) |              (L1)

Neither needs labels, so unlabeled user frames train with these two terms alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn


class Transform(Protocol):
    """A batch of coordinate transforms (see :mod:`compressbench.training.equivariance_warps`)."""

    def points(self, coords: torch.Tensor) -> torch.Tensor: ...  # (B, N, 2) -> (B, N, 2)

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor: ...  # (B, N, 2) -> (B, N, 2, 2)

    def images(self, images: torch.Tensor) -> torch.Tensor: ...  # (B, C, H, W) -> (B, C, H, W)


@dataclass(frozen=True)
class TeacherLossWeights:
    """Weights of the four terms; a zero weight skips its term."""

    keypoint: float = 10.0
    jacobian: float = 1.0
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 1.0


def keypoint_loss(value: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of (B, K, 2) keypoints and landmarks (normalised units)."""
    return (value - landmarks).abs().mean()


def jacobian_loss(jacobian: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of (B, K, 2, 2) jacobians and their targets."""
    return (jacobian - target).abs().mean()


def equivariance_value_loss(value: torch.Tensor, warped_value: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Mean |kp(frame) - T(kp(warped frame))| over batch, keypoints and both coordinates."""
    return (value - transform.points(warped_value)).abs().mean()


def equivariance_jacobian_loss(
    jacobian: torch.Tensor, warped_value: torch.Tensor, warped_jacobian: torch.Tensor, transform: Transform
) -> torch.Tensor:
    """Mean |I - J^-1 . J_T(kp_w) . J_w| over batch, keypoints and the 4 entries."""
    carried = transform.jacobian(warped_value) @ warped_jacobian
    normed = torch.linalg.solve(jacobian, carried)  # J^-1 . carried, without forming the inverse
    eye = torch.eye(2, dtype=normed.dtype, device=normed.device)
    return (eye - normed).abs().mean()


def teacher_loss(
    model: nn.Module,
    images: torch.Tensor,
    transform: Transform | None,
    landmarks: torch.Tensor | None = None,
    jacobians: torch.Tensor | None = None,
    weights: TeacherLossWeights = TeacherLossWeights(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the terms that apply, and each term's value.

    Supervised terms need ``landmarks`` (and ``jacobians``); equivariance terms need ``transform``.
    The frames and their warped copies go through the model as one batch (one forward pass,
    which DistributedDataParallel requires per backward).
    """
    count = images.shape[0]
    use_equivariance = transform is not None and (weights.equivariance_value or weights.equivariance_jacobian)
    batch = torch.cat([images, transform.images(images)]) if use_equivariance else images
    out = model(batch)
    value, jacobian = out["value"][:count], out.get("jacobian")
    terms: dict[str, torch.Tensor] = {}
    if landmarks is not None and weights.keypoint:
        terms["keypoint"] = keypoint_loss(value, landmarks)
    if jacobians is not None and jacobian is not None and weights.jacobian:
        terms["jacobian"] = jacobian_loss(jacobian[:count], jacobians)
    if use_equivariance:
        warped_value = out["value"][count:]
        if weights.equivariance_value:
            terms["equivariance_value"] = equivariance_value_loss(value, warped_value, transform)
        if jacobian is not None and weights.equivariance_jacobian:
            terms["equivariance_jacobian"] = equivariance_jacobian_loss(
                jacobian[:count], warped_value, jacobian[count:], transform
            )
    if not terms:
        raise ValueError("no loss term applies: give landmarks, a transform, or non-zero weights")
    total = sum(getattr(weights, name) * term for name, term in terms.items())
    return total, {name: float(term.detach()) for name, term in terms.items()}
