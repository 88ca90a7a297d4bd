"""Models: the FOMM teacher, students, the registry, and loading from names, files and checkpoints."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.models import zoo as _zoo  # noqa: F401  (fills the registry)
from compressbench.models.checkpoint import extract_state_dict, load_state_dict_strict, read_checkpoint
from compressbench.models.detector import DetectorConfig, KeypointDetector, build_teacher
from compressbench.models.fomm_config import read_fomm_config
from compressbench.models.registry import MODELS, ModelEntry, create_model, list_models, register_model
from compressbench.models.saved import is_saved_model, load_saved_model, register_architecture, save_model

WEIGHTS_CHOICES = ("default", "random")


def load_model(
    name_or_path: str | Path,
    checkpoint: str | Path | None = None,
    config: str | Path | DetectorConfig | None = None,
    weights: str = "default",
) -> nn.Module:
    """Build a model by registry name or from a saved model file, in eval mode.

    ``config`` is a FOMM YAML file (or a :class:`DetectorConfig`); ``checkpoint`` a FOMM
    checkpoint (its ``kp_detector`` entry) or a bare state dict, read with ``weights_only=True``.
    ``weights='random'`` keeps the random initialisation; ``'default'`` uses the model's default
    weights where it has any.
    """
    if weights not in WEIGHTS_CHOICES:
        raise CompressbenchError(f"unknown weights {weights!r}; choose one of: {', '.join(WEIGHTS_CHOICES)}")
    name = str(name_or_path)
    if name not in MODELS and Path(name).is_file():
        if config is not None:
            raise CompressbenchError(f"--config does not apply to a saved model file ({name}); it carries its own")
        model, _ = load_saved_model(name)
    else:
        entry = MODELS.get(name)
        detector_config = read_fomm_config(config) if isinstance(config, (str, Path)) else config
        model = entry.factory(detector_config or entry.default_config)
        if checkpoint is None and weights == "default":
            from compressbench.models.default_weights import apply_default_weights

            apply_default_weights(name, model, detector_config)
    if checkpoint is not None:
        raw = read_checkpoint(checkpoint)
        state = raw["state_dict"] if is_saved_model(raw) else extract_state_dict(raw, checkpoint)
        load_state_dict_strict(model, state, checkpoint)
    return model.eval()


__all__ = [
    "MODELS",
    "WEIGHTS_CHOICES",
    "DetectorConfig",
    "KeypointDetector",
    "ModelEntry",
    "build_teacher",
    "create_model",
    "list_models",
    "load_model",
    "load_saved_model",
    "read_fomm_config",
    "register_architecture",
    "register_model",
    "save_model",
]
