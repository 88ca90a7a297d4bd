"""Default (trained) weights for registered models, where the project has them."""

from __future__ import annotations

from torch import nn

from compressbench.models.detector import DetectorConfig

# name -> loader(model) ; filled when trained default weights exist.
_DEFAULT_WEIGHT_LOADERS: dict = {}


def has_default_weights(name: str, config: DetectorConfig | None = None) -> bool:
    return name in _DEFAULT_WEIGHT_LOADERS and config in (None, DetectorConfig())


def apply_default_weights(name: str, model: nn.Module, config: DetectorConfig | None = None) -> bool:
    """Load ``name``'s default weights into ``model``; False when it has none (random init stays)."""
    if not has_default_weights(name, config):
        return False
    _DEFAULT_WEIGHT_LOADERS[name](model)
    return True
