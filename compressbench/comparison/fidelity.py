"""Agreement of a variant with the teacher on held-out frames: AKD (px) and jacobian error."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compressbench import metrics

CHUNK = 16  # frames per forward while collecting outputs; bounds memory, does not change the means


@dataclass(frozen=True)
class Outputs:
    """A detector's keypoints (N, K, 2) and jacobians (N, K, 2, 2, or None) on all frames."""

    value: torch.Tensor
    jacobian: torch.Tensor | None


def collect_outputs(module: nn.Module, images: torch.Tensor) -> Outputs:
    """Run ``module`` over ``images`` in chunks and keep its keypoints and jacobians."""
    values, jacobians = [], []
    with torch.inference_mode():
        for start in range(0, len(images), CHUNK):
            out = module(images[start : start + CHUNK])
            values.append(out["value"].float())
            jacobians.append(out.get("jacobian"))
    has_jacobian = all(j is not None for j in jacobians)
    return Outputs(torch.cat(values), torch.cat([j.float() for j in jacobians]) if has_jacobian else None)


def fidelity(pred: Outputs, ref: Outputs, image_size: int) -> dict[str, float | None]:
    """``akd_px`` (pixels of an ``image_size`` square frame) and ``jacobian_error`` over all frames;
    the jacobian error is None when either side has no jacobians."""
    akd = float(metrics.akd_px(pred.value, ref.value, image_size))
    jac = None
    if pred.jacobian is not None and ref.jacobian is not None:
        jac = float(metrics.jacobian_error(pred.jacobian, ref.jacobian))
    return {"akd_px": akd, "jacobian_error": jac}
