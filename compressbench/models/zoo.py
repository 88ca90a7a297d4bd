"""The registered models. Importing this module fills the registry."""

from __future__ import annotations

from compressbench.models.detector import DetectorConfig, KeypointDetector, build_teacher
from compressbench.models.registry import register_model


@register_model("teacher", "FOMM KPDetector, vox-256: anti-alias 256->64, hourglass (5+5 blocks, 32..1024 ch), 10 kp")
def teacher(config: DetectorConfig) -> KeypointDetector:
    return build_teacher(config)
