"""The registered models. Importing this module fills the registry."""

from __future__ import annotations

from compressbench.models import students as _students  # noqa: F401  (registers the student models)
from compressbench.models.detector import DetectorConfig, KeypointDetector, build_teacher
from compressbench.models.registry import create_model, register_model
from compressbench.models.saved import register_architecture, save_model


@register_model("teacher", "FOMM KPDetector, vox-256: anti-alias 256->64, hourglass (5+5 blocks, 32..1024 ch), 10 kp")
def teacher(config: DetectorConfig) -> KeypointDetector:
    return build_teacher(config)


@register_architecture("registered-model")
def _rebuild_registered(args: dict):
    """Saved-model builder: a registered model with an explicit configuration."""
    config = DetectorConfig(**args["config"]) if args.get("config") else None
    return create_model(args.get("model", "teacher"), config)


def save_registered(module, path, model: str = "teacher", metadata: dict | None = None):
    """Save a registered model (any config, any weights) so ``load_model(path)`` rebuilds it."""
    config = getattr(module, "config", None)
    args = {"model": model, "config": config.to_dict() if config is not None else None}
    return save_model(module, path, "registered-model", args, metadata)
