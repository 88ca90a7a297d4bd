"""Fidelity metrics between a detector's outputs and a reference (the teacher or ground truth).

Every function takes batched tensors, returns a 0-dim tensor (differentiable, so the same
functions can serve as losses) and weighs every sample of the batch equally, so the mean over a
data set is the size-weighted mean of per-batch values.

Coordinates follow the data contract: a normalised coordinate u in [-1, 1] is the pixel position
(u + 1) / 2 * S of an S x S image, so one normalised unit is S / 2 pixels.
"""

from __future__ import annotations

import torch

from compressbench.errors import CompressbenchError

KL_EPSILON = 1e-8


def _same_shape(what: str, pred: torch.Tensor, ref: torch.Tensor, trailing: tuple[int, ...] = ()) -> None:
    if pred.shape != ref.shape:
        raise CompressbenchError(
            f"cannot compare {what}: the model gives shape {tuple(pred.shape)} but the reference has "
            f"{tuple(ref.shape)}; compare models with the same number of keypoints"
        )
    if trailing and tuple(pred.shape[-len(trailing):]) != trailing:
        raise CompressbenchError(f"{what} must end in dimensions {trailing}, got shape {tuple(pred.shape)}")


def mean_distance(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between matching points, in the points' own units.

    ``pred`` and ``ref`` are (B, K, 2); the result is mean over b and k of ||pred[b,k] - ref[b,k]||_2.
    """
    _same_shape("keypoints", pred, ref, (2,))
    return torch.linalg.vector_norm(pred - ref, dim=-1).mean()


def akd_px(pred: torch.Tensor, ref: torch.Tensor, image_size: int = 256) -> torch.Tensor:
    """Average keypoint distance (seed 001) in pixels of an ``image_size`` square image.

    AKD = 1/B sum_b 1/K sum_k ||x_pred[b,k] - x_ref[b,k]||_2 * image_size / 2, with keypoints (B, K, 2)
    in normalised [-1, 1] coordinates (one normalised unit is image_size / 2 pixels).
    """
    return mean_distance(pred, ref) * (image_size / 2)


def akd_interval_px(pred: torch.Tensor, ref: torch.Tensor, image_size: int = 256, confidence: float = 0.95) -> float | None:
    """Half-width (px) of the ``confidence`` interval of :func:`akd_px` over frames: the per-frame
    AKDs' standard error times Student's t quantile for B - 1 degrees of freedom. A frame's K
    keypoints move together, so the frame, not the keypoint, is the independent sample. None for
    fewer than two frames. On 32 frames a pruned detector's AKD is known to about +-0.1 px, which
    decides a search's verdict when the bound is that close."""
    _same_shape("keypoints", pred, ref, (2,))
    frames = pred.shape[0]
    if frames < 2:
        return None
    from scipy.stats import t  # scipy's Student's t quantile: imported on first use, as the report's plots are

    per_frame = torch.linalg.vector_norm(pred.double() - ref.double(), dim=-1).mean(dim=-1) * (image_size / 2)
    standard_error = float(per_frame.std(unbiased=True)) / frames**0.5
    return float(t.ppf(0.5 + confidence / 2, frames - 1)) * standard_error


def landmark_error_px(pred: torch.Tensor, gt: torch.Tensor, image_size: int = 256) -> torch.Tensor:
    """AKD against ground-truth landmarks, in pixels: mean over keypoints and samples of
    ||x_pred - x_gt||_2 * image_size / 2 (same formula as :func:`akd_px`)."""
    return akd_px(pred, gt, image_size)


def nmae(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Normalised mean absolute error (seed 003's ``nmae_argmax``), a fraction of the image side.

    Both point sets are mapped from [-1, 1] to [0, 1] with p -> (p + 1) / 2 and the result is the
    mean, over every x and every y coordinate of every keypoint of every sample, of the absolute
    difference: NMAE = mean |(p + 1)/2 - (g + 1)/2| = mean |p - g| / 2. Multiply by the image side
    for an average per-coordinate error in pixels; 0.01 on a 256 image is 2.56 px per coordinate.
    """
    _same_shape("keypoints", pred, gt, (2,))
    return ((pred + 1) / 2 - (gt + 1) / 2).abs().mean()


def jacobian_error(pred_j: torch.Tensor, ref_j: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the (B, K, 2, 2) jacobians over all 4 entries, keypoints and
    samples: mean |J_pred - J_ref|. Unitless (a jacobian maps normalised to normalised coordinates)."""
    _same_shape("jacobians", pred_j, ref_j, (2, 2))
    return (pred_j - ref_j).abs().mean()


def heatmap_mse(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two (B, K, H, W) heatmaps over every pixel, keypoint and sample:
    mean (p - q)^2, in squared probability mass per pixel."""
    _same_shape("heatmaps", p, q)
    return (p - q).square().mean()


def heatmap_kl(p: torch.Tensor, q: torch.Tensor, eps: float = KL_EPSILON) -> torch.Tensor:
    """KL divergence of the reference from the prediction, KL(q || p), in nats, averaged over
    heatmaps.

    ``p`` is the evaluated model's heatmap and ``q`` the reference's, each (B, K, H, W) and
    summing to 1 over its H x W pixels. Per heatmap: sum_ij q_ij * (log(q_ij + eps) - log(p_ij + eps));
    ``eps`` keeps log finite where the prediction puts no mass. The direction (reference first)
    punishes a prediction that misses mass where the reference has it.
    """
    _same_shape("heatmaps", p, q)
    per_pixel = q * (torch.log(q + eps) - torch.log(p + eps))
    return per_pixel.flatten(start_dim=-2).sum(dim=-1).mean()


def heatmap_peak(h: torch.Tensor) -> torch.Tensor:
    """Mean over samples and keypoints of each (H, W) heatmap's maximum probability: 1 for a one-hot
    map, 1 / (H * W) for a uniform one. A sharpness measure of the detector's confidence."""
    if h.dim() < 2:
        raise CompressbenchError(f"heatmaps must have at least 2 dimensions (H, W), got shape {tuple(h.shape)}")
    return h.flatten(start_dim=-2).amax(dim=-1).mean()


__all__ = [
    "akd_interval_px",
    "akd_px",
    "heatmap_kl",
    "heatmap_mse",
    "heatmap_peak",
    "jacobian_error",
    "landmark_error_px",
    "mean_distance",
    "nmae",
]


# -- the AKD bound: one rule for the report, the search and compress's notes -------------------------


def within_bound(akd_px: float | None, max_akd: float) -> bool:
    """True when an AKD is known and at most the bound (the bound itself is within)."""
    return akd_px is not None and akd_px <= max_akd


def fastest_within(rows: list[dict], max_akd: float) -> dict | None:
    """The fastest measured row after the first (the reference) whose AKD is within ``max_akd``;
    None when no row is, and then no row is called the best."""
    within = [r for r in rows[1:] if r.get("latency_ms") is not None and within_bound(r.get("akd_px"), max_akd)]
    return min(within, key=lambda r: r["latency_ms"]) if within else None


def pareto_front(rows: list[dict], x: str = "latency_ms", y: str = "akd_px") -> list[str]:
    """Names of the rows no other row beats on both ``x`` and ``y`` (lower is better): the search's
    front and the report's plot."""
    usable = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    front = []
    for r in usable:
        dominated = any(
            o[x] <= r[x] and o[y] <= r[y] and (o[x] < r[x] or o[y] < r[y]) for o in usable if o is not r
        )
        if not dominated:
            front.append(r["variant"])
    return front
