"""The registered models and base builders. Importing this module fills both registries."""

from __future__ import annotations

from torch import nn

from compressbench.models.blocks import Hourglass
from compressbench.models.detector import DetectorConfig, KeypointDetector, build_teacher
from compressbench.models.registry import create_model, register_base_builder, register_model
from compressbench.models.students import families as student_families

REGISTERED = "registered-model"


@register_model("teacher", "FOMM KPDetector, vox-256: anti-alias 256->64, hourglass (5+5 blocks, 32..1024 ch), 10 kp")
def teacher(config: DetectorConfig) -> KeypointDetector:
    return build_teacher(config)


@register_base_builder(REGISTERED)
def build_registered(args: dict) -> nn.Module:
    """A registered model with an explicit configuration: ``{"model": name, "config": fields or None}``."""
    config = DetectorConfig(**args["config"]) if args.get("config") else None
    return create_model(args.get("model", "teacher"), config)


def base_of_module(module: nn.Module | None) -> tuple[str, dict]:
    """``(kind, args)`` of the base that rebuilds ``module``'s architecture, or ``("", {})``.

    A student detector knows its family and width; a teacher-shaped detector is the registered
    ``teacher`` with its configuration. Anything else (a user's own module) is of unknown origin."""
    predictor = getattr(module, "predictor", None)
    if getattr(predictor, "student_name", None) is not None:
        return student_families.ARCHITECTURE, student_families.student_builder_args(module)
    if isinstance(module, KeypointDetector) and isinstance(predictor, Hourglass):
        return REGISTERED, {"model": "teacher", "config": module.config.to_dict()}
    return "", {}
