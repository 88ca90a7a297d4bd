"""Which top-level parts of a detector get quantized, and the inputs they see on calibration frames.

A part is a top-level child of the :class:`KeypointDetector` (``down``, ``predictor``, ``kp``,
``jacobian``). A quantized part replaces the child at the same attribute and still takes and
returns float tensors, so the detector's forward and per-module profiling by name are unchanged.
The softmax, soft-argmax and jacobian pooling have no weights and stay in float: the softmax
temperature of 0.1 multiplies any rounding of its input by ten. For the same reason the heatmap
head ``kp`` stays float by default: its int8 output feeds that softmax directly. Against a partly
trained teacher, quantizing it raised the keypoint error from 0.19 to 0.27 px (onnxruntime) for
about 3.5 ms of a 24 ms single-thread forward; add it to ``parts`` when speed matters more. The
jacobian head's rounding is averaged away by the heatmap-weighted pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.errors import CompressbenchError

PARTS = ("down", "predictor", "kp", "jacobian")
DEFAULT_PARTS = "predictor,jacobian"
CALIBRATION_BATCH = 4  # frames per forward while collecting part inputs


def parse_parts(text: str) -> tuple[str, ...]:
    """``"predictor, kp"`` -> ``("predictor", "kp")`` in the detector's order; unknown names fail."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise CompressbenchError(
            f"quantize: unknown part(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(PARTS)}"
        )
    return tuple(p for p in PARTS if p in names)


def check_parts(text: str) -> str | None:
    """Option validator: an error sentence or None."""
    try:
        parse_parts(text)
    except CompressbenchError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def present_parts(model: nn.Module, wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(parts the model has, parts it lacks, e.g. ``jacobian`` when it estimates none)."""
    if not isinstance(getattr(model, "predictor", None), nn.Module):
        raise CompressbenchError("quantize needs a keypoint detector (a model with a .predictor); got "
                                 f"{type(model).__name__}")
    have = [p for p in wanted if isinstance(getattr(model, p, None), nn.Module)]
    return have, [p for p in wanted if p not in have]


@torch.no_grad()
def part_inputs(model: nn.Module, parts: list[str], frames: torch.Tensor, advance=None) -> dict[str, torch.Tensor]:
    """The input each part receives when the float ``model`` runs on ``frames`` (concatenated over
    the batch). ``advance(n)`` is called after every chunk of frames."""
    captured: dict[str, list[torch.Tensor]] = {p: [] for p in parts}
    hooks = []
    for part in parts:

        def keep(_module, inputs, part=part):
            captured[part].append(inputs[0].detach().clone())

        hooks.append(getattr(model, part).register_forward_pre_hook(keep))
    try:
        for start in range(0, frames.shape[0], CALIBRATION_BATCH):
            chunk = frames[start : start + CALIBRATION_BATCH]
            model(chunk)
            if advance is not None:
                advance(chunk.shape[0])
    finally:
        for hook in hooks:
            hook.remove()
    return {p: torch.cat(tensors) for p, tensors in captured.items()}


def batches(inputs: torch.Tensor, size: int = CALIBRATION_BATCH) -> list[torch.Tensor]:
    """Split calibration inputs into forward-sized chunks."""
    return list(torch.split(inputs, size))
