"""Read FOMM YAML configs (``model_params.kp_detector_params`` + ``model_params.common_params``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, read_error
from compressbench.models.detector import DetectorConfig

# FOMM's KPDetector signature: these have defaults there; the rest are required.
FOMM_SIGNATURE_DEFAULTS = {"estimate_jacobian": False, "scale_factor": 1, "single_jacobian_map": False, "pad": 0}
# common_params keys FOMM passes to every network; the detector ignores the ones it does not take.
COMMON_KEYS_FOR_OTHER_NETWORKS = {"image_channel", "feature_channel", "num_tps", "bg"}


def read_fomm_config(path: str | Path) -> DetectorConfig:
    """Build a :class:`DetectorConfig` from a FOMM YAML file as FOMM itself would."""
    path = check_input_file(path, "config file")
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise read_error(path, exc, "config file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressbenchError(f"config file {path} is not valid YAML: {first_line}") from None
    params = (doc or {}).get("model_params") if isinstance(doc, dict) else None
    if not isinstance(params, dict) or not isinstance(params.get("kp_detector_params"), dict):
        raise CompressbenchError(
            f"config file {path} has no model_params.kp_detector_params mapping; is it a FOMM config?"
        )
    common = params.get("common_params") or {}
    if not isinstance(common, dict):
        raise CompressbenchError(f"config file {path}: model_params.common_params must be a mapping")
    merged = {k: v for k, v in common.items() if k not in COMMON_KEYS_FOR_OTHER_NETWORKS}
    merged.update(params["kp_detector_params"])
    known = set(DetectorConfig.field_names())
    unknown = sorted(set(merged) - known)
    if unknown:
        raise CompressbenchError(
            f"config file {path}: unknown detector parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values = {**FOMM_SIGNATURE_DEFAULTS, **merged}
    missing = sorted(known - set(values))
    if missing:
        raise CompressbenchError(f"config file {path}: missing detector parameter(s) {', '.join(missing)}")
    try:
        config = DetectorConfig(**values)
        _validate(config)
    except (TypeError, ValueError) as exc:
        raise CompressbenchError(f"config file {path}: {exc}") from None
    return config


def _validate(config: DetectorConfig) -> None:
    for name in ("block_expansion", "num_kp", "num_channels", "max_features", "num_blocks"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (0 < float(config.scale_factor) <= 1):
        raise ValueError(f"scale_factor must be in (0, 1], got {config.scale_factor!r}")
    if float(config.temperature) <= 0:
        raise ValueError(f"temperature must be positive, got {config.temperature!r}")
