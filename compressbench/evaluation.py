"""Fidelity of a detector against a reference: the teacher's outputs or ground-truth landmarks.

:func:`evaluate` runs the model (and the teacher, when it is the reference) over frames in
batches under ``torch.inference_mode`` and averages the metrics of :mod:`compressbench.metrics`
over every frame. The references are a registry, so a new one is one registration.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

import compressbench.metrics as metrics
from compressbench.data import FrameBatch
from compressbench.errors import CompressbenchError
from compressbench.models import build_model_with_weights
from compressbench.progress import progress_bar
from compressbench.registry import Registry
from compressbench.report.overlays import check_overlay_dir, write_overlays

Outputs = dict[str, Optional[torch.Tensor]]


@dataclass(frozen=True)
class Reference:
    """What a model is compared with: how to check the frames serve, and the reference outputs
    (``value``, ``jacobian``, ``heatmap``; any may be None) for one batch."""

    name: str
    description: str
    needs_teacher: bool
    check: Callable[[FrameBatch], None]
    outputs: Callable[[FrameBatch, Optional[nn.Module]], Outputs]


REFERENCES: Registry[Reference] = Registry("reference (--against)")


def _no_check(frames: FrameBatch) -> None:
    return None


def _teacher_outputs(batch: FrameBatch, teacher: Optional[nn.Module]) -> Outputs:
    return run_model(teacher, batch.images)


def _require_landmarks(frames: FrameBatch) -> None:
    if frames.landmarks is None:
        raise CompressbenchError(
            "these frames have no ground-truth landmarks (user images or video); "
            "use --against teacher, or synthetic frames for --against ground-truth"
        )


def _ground_truth_outputs(batch: FrameBatch, teacher: Optional[nn.Module]) -> Outputs:
    return {"value": batch.landmarks, "jacobian": batch.jacobians, "heatmap": None}


REFERENCES.register("teacher", Reference("teacher", "the teacher's outputs on the same frames", True, _no_check, _teacher_outputs))
REFERENCES.register(
    "ground-truth",
    Reference("ground-truth", "the frames' ground-truth landmarks and jacobians", False, _require_landmarks, _ground_truth_outputs),
)


def reference_for(against: str, frames: FrameBatch | None = None) -> Reference:
    """The registered reference ``against`` (unknown names list the choices), checked against
    ``frames`` when given (ground truth needs frames with landmarks)."""
    reference = REFERENCES.get(against)
    if frames is not None:
        reference.check(frames)
    return reference


def _device_of(module: nn.Module) -> torch.device:
    # quantized modules may hold no parameters but buffers, and a runtime's runner neither: the CPU
    if not isinstance(module, nn.Module):
        return torch.device("cpu")
    first = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def run_model(module: nn.Module, images: torch.Tensor) -> Outputs:
    """One forward pass of a detector on ``images``; returns ``value``, ``jacobian``, ``heatmap``
    (None for the ones the model does not produce) on the CPU."""
    with torch.inference_mode():
        out = module(images.to(_device_of(module)))
    if not isinstance(out, dict) or "value" not in out:
        raise CompressbenchError(
            f"{type(module).__name__} does not return a keypoint dict with a 'value' entry; "
            "evaluate needs a keypoint detector"
        )
    return {key: (out[key].float().cpu() if out.get(key) is not None else None) for key in ("value", "jacobian", "heatmap")}


OUTPUT_KEYS = ("value", "jacobian", "heatmap")


def collect_outputs(
    module: nn.Module, images: torch.Tensor, batch_size: int = 16, keys: tuple[str, ...] = OUTPUT_KEYS
) -> Outputs:
    """``module``'s outputs on all ``images``, in eval mode and in batches of ``batch_size``,
    concatenated on the CPU (``keys`` only; an output the model lacks is None). The one loop that
    runs a model over frames: evaluation, comparison, distillation and teacher training use it."""
    _check_batch_size(batch_size)
    with _eval_mode(module):
        parts = [run_model(module, images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    return {key: (torch.cat([p[key] for p in parts]) if parts and parts[0][key] is not None else None) for key in keys}


def predict(module: nn.Module, frames: FrameBatch, batch_size: int = 16) -> Outputs:
    """The model's outputs on all ``frames``. Keeps heatmaps too: use it on a few frames (e.g. for
    overlays), not a whole data set."""
    return collect_outputs(module, frames.images, batch_size)


def reference_points(against: str, frames: FrameBatch, teacher: Optional[nn.Module] = None, batch_size: int = 16) -> torch.Tensor:
    """The reference keypoints (N, K, 2) for ``frames``: the teacher's or the ground truth."""
    reference = reference_for(against, frames)
    teacher = _teacher_if_needed(reference, teacher)
    with _eval_mode(teacher):
        parts = [reference.outputs(frames.slice(start, start + batch_size), teacher)["value"] for start in range(0, len(frames), batch_size)]
    return torch.cat(parts)


@contextlib.contextmanager
def _eval_mode(module: Optional[nn.Module]) -> Iterator[None]:
    """Put ``module`` (if any) in eval mode for a block, then restore its training flag."""
    if not isinstance(module, nn.Module):  # nothing to switch (None, or a runtime's runner)
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _check_batch_size(batch_size: int) -> None:
    if batch_size <= 0:
        raise CompressbenchError(f"batch size must be a positive integer, got {batch_size}")


def _teacher_if_needed(reference: Reference, teacher: Optional[nn.Module]) -> Optional[nn.Module]:
    if not reference.needs_teacher:
        return None
    if teacher is None:  # the registered teacher with its shipped weights, as load_model("teacher") builds it
        teacher = build_model_with_weights("teacher").eval()
    return teacher


class _Means:
    """Running frame-weighted means; a metric that is None for any batch stays None."""

    def __init__(self) -> None:
        self.sums: dict[str, Optional[float]] = {}
        self.frames = 0

    def add(self, values: dict[str, Optional[torch.Tensor]], count: int) -> None:
        for key, value in values.items():
            if value is None or (key in self.sums and self.sums[key] is None):
                self.sums[key] = None
            else:
                self.sums[key] = self.sums.get(key, 0.0) + float(value) * count
        self.frames += count

    def mean(self, key: str) -> Optional[float]:
        total = self.sums.get(key)
        return None if total is None or self.frames == 0 else total / self.frames


def _maybe(fn, a: Optional[torch.Tensor], b: Optional[torch.Tensor], *args) -> Optional[torch.Tensor]:
    return None if a is None or b is None else fn(a, b, *args)


def _batch_metrics(pred: Outputs, ref: Outputs, batch: FrameBatch, image_size: int) -> dict[str, Optional[torch.Tensor]]:
    heatmaps_comparable = pred["heatmap"] is not None and ref["heatmap"] is not None and pred["heatmap"].shape == ref["heatmap"].shape
    return {
        "akd_px": metrics.akd_px(pred["value"], ref["value"], image_size),
        "jacobian_error": _maybe(metrics.jacobian_error, pred["jacobian"], ref["jacobian"]),
        "heatmap_mse": metrics.heatmap_mse(pred["heatmap"], ref["heatmap"]) if heatmaps_comparable else None,
        "heatmap_kl": metrics.heatmap_kl(pred["heatmap"], ref["heatmap"]) if heatmaps_comparable else None,
        "heatmap_peak": None if pred["heatmap"] is None else metrics.heatmap_peak(pred["heatmap"]),
        "landmark_error_px": _maybe(metrics.landmark_error_px, pred["value"], batch.landmarks, image_size),
        "nmae": _maybe(metrics.nmae, pred["value"], batch.landmarks),
    }


METRIC_KEYS = ("akd_px", "jacobian_error", "heatmap_mse", "heatmap_kl", "heatmap_peak", "landmark_error_px", "nmae")


def _notes(pred: Outputs, ref: Outputs, against: str) -> list[str]:
    notes = []
    if pred["heatmap"] is not None and ref["heatmap"] is not None and pred["heatmap"].shape != ref["heatmap"].shape:
        notes.append(
            f"heatmaps not compared: the model's are {tuple(pred['heatmap'].shape[-2:])}, "
            f"the {against}'s {tuple(ref['heatmap'].shape[-2:])}"
        )
    elif ref["heatmap"] is None:
        notes.append(f"heatmaps not compared: the {against} reference has none")
    if pred["jacobian"] is None or ref["jacobian"] is None:
        notes.append(f"jacobians not compared: {'the model' if pred['jacobian'] is None else f'the {against} reference'} has none")
    return notes


def evaluate(
    model: nn.Module,
    frames: FrameBatch,
    against: str = "teacher",
    teacher: Optional[nn.Module] = None,
    batch_size: int = 16,
    image_size: Optional[int] = None,
    show_progress: bool = True,
    model_name: Optional[str] = None,
    data_name: str = "frames",
    seed: Optional[int] = None,
    notes: Sequence[str] = (),
    overlays: Optional[str | Path] = None,
    overlay_limit: int = 8,
) -> dict:
    """Fidelity of ``model`` on ``frames`` against a reference, as a JSON-ready record.

    ``against='teacher'`` compares with ``teacher`` (default: ``load_model('teacher')``) on the same
    frames; ``'ground-truth'`` with the frames' landmarks and jacobians (heatmap comparisons are
    then None). ``landmark_error_px`` and ``nmae`` are filled whenever the frames have ground truth.
    Pixel metrics use ``image_size`` (default: the frames' side). Metrics are means over all
    frames; a metric that cannot be computed (the model or reference lacks that output) is None.
    ``seed`` (of synthetic frames) and ``notes`` go into the record as given; ``overlays``, a
    folder, receives PNGs of the first ``overlay_limit`` frames with both sets of keypoints drawn.
    """
    if overlays is not None:
        check_overlay_dir(overlays)
    _check_batch_size(batch_size)
    reference = reference_for(against, frames)
    if len(frames) == 0:
        raise CompressbenchError("no frames to evaluate; give at least one frame")
    image_size = image_size or int(frames.images.shape[-1])
    teacher = _teacher_if_needed(reference, teacher)
    means = _Means()
    found: list[str] = []
    num_batches = -(-len(frames) // batch_size)
    with (
        torch.inference_mode(),
        _eval_mode(model),
        _eval_mode(teacher),
        progress_bar(f"evaluate vs {against}", num_batches, show_progress) as advance,
    ):
        for start in range(0, len(frames), batch_size):
            batch = frames.slice(start, start + batch_size)
            pred = run_model(model, batch.images)
            ref = reference.outputs(batch, teacher)
            if start == 0:
                found = _notes(pred, ref, against)
            means.add(_batch_metrics(pred, ref, batch, image_size), len(batch))
            advance(akd_px=means.mean("akd_px"))
    label = model_name or type(model).__name__
    skipped = int(getattr(frames, "skipped", 0) or 0)
    if skipped:
        found.append(f"{skipped} unreadable input files were skipped")
    if overlays is not None:  # drawn before the record is built: the record names the folder written
        shown = frames.slice(0, overlay_limit)
        write_overlays(
            overlays, shown, predict(model, shown, batch_size=batch_size)["value"],
            reference_points(against, shown, teacher, batch_size), overlay_limit, model_name=label,
            reference_name=against,
        )  # fmt: skip
    return {  # built once, every field at once
        "model": label,
        "data": data_name,
        "frames": means.frames,
        "against": against,
        "image_size": image_size,
        "batch_size": batch_size,
        "seed": seed,
        **{key: means.mean(key) for key in METRIC_KEYS},
        "notes": [*found, *(note for note in notes if note)],
        "overlays": None if overlays is None else str(overlays),
    }


__all__ = [
    "METRIC_KEYS", "OUTPUT_KEYS", "REFERENCES", "Reference", "collect_outputs", "evaluate", "predict", "reference_for",
    "reference_points", "run_model",
]  # fmt: skip
