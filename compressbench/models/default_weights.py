"""Default (trained) weights for registered models, where the project has them.

They ship as float16 state dicts in ``compressbench/weights/`` (package data), each with a JSON
record of how it was trained and measured; loading reads the file with ``weights_only=True`` and
converts it back to float32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compressbench.models.checkpoint import load_state_dict_strict, read_checkpoint
from compressbench.models.detector import DetectorConfig
from compressbench.models.heads import AntiAliasInterpolation2d

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

# model name -> file in WEIGHTS_DIR, for the model's default configuration only
DEFAULT_WEIGHT_FILES: dict[str, str] = {"teacher": "teacher-vox256.pt"}


def to_float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors back to float32; integer buffers unchanged."""
    return {name: t.float() if t.is_floating_point() else t for name, t in state.items()}


def default_weights_path(name: str) -> Path | None:
    """The file holding ``name``'s default weights, or None when it has none (or it is not installed)."""
    file = DEFAULT_WEIGHT_FILES.get(name)
    path = WEIGHTS_DIR / file if file is not None else None
    return path if path is not None and path.is_file() else None


def has_default_weights(name: str, config: DetectorConfig | None = None) -> bool:
    return default_weights_path(name) is not None and config in (None, DetectorConfig())


def computed_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers that are a fixed function of the architecture, not learned: the anti-alias Gaussian."""
    return {
        f"{name}.weight" if name else "weight": module.weight.detach().clone()
        for name, module in model.named_modules()
        if isinstance(module, AntiAliasInterpolation2d)
    }


def keep_computed_buffers(state: dict[str, torch.Tensor], computed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with each computed buffer put back where the file holds it only to half precision.

    The shipped file rounds every tensor to float16; for the Gaussian that breaks its exact
    separability (rank 1 to ~1e-5), which ``exact`` needs to rewrite the anti-alias down-sampling.
    A stored kernel that differs by more than float16 rounding is a different kernel and is kept."""
    out = dict(state)
    for key, value in computed.items():
        stored = out.get(key)
        if stored is not None and stored.shape == value.shape and torch.equal(stored.half().float(), value.half().float()):
            out[key] = value
    return out


def apply_default_weights(name: str, model: nn.Module, config: DetectorConfig | None = None) -> bool:
    """Load ``name``'s default weights into ``model``; False when it has none (random init stays)."""
    if not has_default_weights(name, config):
        return False
    path = default_weights_path(name)
    state = keep_computed_buffers(to_float32(read_checkpoint(path)), computed_buffers(model))
    load_state_dict_strict(model, state, path)
    return True
