"""Models: the FOMM teacher, students, the model registry and the base builders of saved models.

Loading from a name *or* a saved file is :func:`compressbench.provenance.load_model` (also
``compressbench.load_model``): files carry a provenance, which lives above models and compression.
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.models import zoo as _zoo
from compressbench.models.blocks import Hourglass
from compressbench.models.checkpoint import extract_state_dict, load_state_dict_strict, read_checkpoint
from compressbench.models.default_weights import apply_default_weights, has_default_weights
from compressbench.models.detector import DetectorConfig, KeypointDetector, build_teacher
from compressbench.models.fomm_config import read_fomm_config
from compressbench.models.registry import (
    BASE_BUILDERS,
    MODELS,
    ModelEntry,
    create_model,
    list_models,
    register_base_builder,
    register_model,
)

base_of_module = _zoo.base_of_module


def build_model_with_weights(name: str, config: DetectorConfig | None = None, default_weights: bool = True) -> nn.Module:
    """The registered model ``name`` (``config`` overrides its defaults), with its shipped trained
    weights where it has any and ``default_weights`` is set; random initialisation otherwise."""
    entry = MODELS.get(name)
    model = entry.factory(config or entry.default_config)
    if default_weights:
        apply_default_weights(name, model, config)
    return model


def check_input_size(module: nn.Module, size: int, option: str = "--input-size") -> None:
    """Refuse, in one sentence and before any long work, a frame side ``module`` cannot take: the
    teacher's hourglass by its configuration, any other model by one dry forward of a blank frame."""
    fixed = getattr(module, "fixed_input_size", None)  # a deployed file, compiled for one size
    if fixed is not None:
        if size != fixed:
            raise CompressbenchError(f"{option} {size}: {module.path.name} was compiled for {fixed} px frames; use {option} {fixed}")
        return
    config = getattr(module, "config", None)
    if isinstance(module, KeypointDetector) and isinstance(module.predictor, Hourglass):
        config.check_input_size(size, option)
        return
    channels = getattr(config, "num_channels", 3)
    try:
        with torch.inference_mode():
            module.eval()(torch.zeros(1, channels, size, size))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressbenchError(f"{option} {size} does not fit this model ({detail}); try 256") from None


__all__ = [
    "check_input_size",
    "BASE_BUILDERS",
    "MODELS",
    "DetectorConfig",
    "KeypointDetector",
    "ModelEntry",
    "base_of_module",
    "build_model_with_weights",
    "build_teacher",
    "create_model",
    "extract_state_dict",
    "has_default_weights",
    "list_models",
    "load_state_dict_strict",
    "read_checkpoint",
    "read_fomm_config",
    "register_base_builder",
    "register_model",
]
