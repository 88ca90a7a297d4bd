"""Agreement of a variant with the teacher on held-out frames: AKD (px) with its 95% interval over
frames, and jacobian error."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import compressbench.evaluation as evaluation
import compressbench.metrics as metrics

CHUNK = 16  # frames per forward while collecting outputs; bounds memory, does not change the means


@dataclass(frozen=True)
class Outputs:
    """A detector's keypoints (N, K, 2) and jacobians (N, K, 2, 2, or None) on all frames."""

    value: torch.Tensor
    jacobian: torch.Tensor | None


def collect_outputs(module: nn.Module, images: torch.Tensor) -> Outputs:
    """``module``'s keypoints and jacobians on ``images`` (see :func:`compressbench.evaluation.collect_outputs`)."""
    out = evaluation.collect_outputs(module, images, CHUNK, ("value", "jacobian"))
    return Outputs(out["value"], out["jacobian"])


def fidelity(pred: Outputs, ref: Outputs, image_size: int) -> dict[str, float | None]:
    """``akd_px`` (pixels of an ``image_size`` square frame), ``akd_px_ci95`` (the half-width of its 95%
    interval over frames) and ``jacobian_error`` over all frames; the jacobian error is None when
    either side has no jacobians."""
    akd = float(metrics.akd_px(pred.value, ref.value, image_size))
    interval = metrics.akd_interval_px(pred.value, ref.value, image_size)
    jac = None
    if pred.jacobian is not None and ref.jacobian is not None:
        jac = float(metrics.jacobian_error(pred.jacobian, ref.jacobian))
    return {"akd_px": akd, "akd_px_ci95": interval, "jacobian_error": jac}
