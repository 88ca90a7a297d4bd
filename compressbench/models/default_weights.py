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


def apply_default_weights(name: str, model: nn.Module, config: DetectorConfig | None = None) -> bool:
    """Load ``name``'s default weights into ``model``; False when it has none (random init stays)."""
    if not has_default_weights(name, config):
        return False
    path = default_weights_path(name)
    load_state_dict_strict(model, to_float32(read_checkpoint(path)), path)
    return True
