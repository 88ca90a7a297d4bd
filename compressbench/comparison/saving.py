"""Saving a compressed variant (``compress --out FILE``), and where a chain starts from.

How a variant is stored
-----------------------
``FILE`` is a ``torch.save`` of a plain dict (see :mod:`compressbench.models.saved`):
``format``, ``architecture="chain"``, ``builder_args`` = ``{"base": {"model": <registered name>,
"config": {DetectorConfig fields}}, "stages": [{"method", "options", "structure"}, ...]}``,
``metadata`` (the variant's name, chain, the measured comparison row, the environment) and the
``state_dict``. Every value is a tensor, number, string, list or dict.

Why loading one is safe
-----------------------
``load_model(FILE)`` reads the file with ``torch.load(weights_only=True)``, which refuses anything
but tensors and plain containers, so no pickled class or function is ever resolved or called.
The module is then *rebuilt by compressbench's own code*: the registered base model is created
from its config, and each stage's registered method replays its ``rebuild(module, options,
structure)`` (e.g. narrower convolutions for ``prune``, factorised pairs for ``asym``), which
only recreates shapes. Finally the state dict is loaded strictly: any missing, unexpected or
mis-shaped tensor is an error. A file can choose numbers and shapes among what the registered
methods know how to build, never code.

``FILE.json`` (the sidecar) records the same chain with its options and per-stage reports, and the
measured row, for people and tools that do not want to load torch. Both files are written
atomically, the model only after the measurement succeeded.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from compressbench.comparison.pipeline import Origin
from compressbench.compression import Variant, save_variant
from compressbench.compression.chain import has_known_base
from compressbench.errors import CompressbenchError
from compressbench.models import MODELS
from compressbench.models.checkpoint import read_checkpoint
from compressbench.models.saved import is_saved_model
from compressbench.report import check_writable, render_json, write_atomic

SIDECAR_FORMAT = "compressbench-variant/1"


def sidecar_path(path: str | Path) -> Path:
    """``model.pt`` -> ``model.pt.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def check_save_target(path: str | Path, origin: Origin) -> None:
    """Fail before any work when the variant could not be saved at ``path``."""
    if not has_known_base(origin.base):
        raise CompressbenchError(
            "--out needs a chain that starts from a registered model or a saved variant; this model file has no known base"
        )
    check_writable(path)
    check_writable(sidecar_path(path))


def origin_of(model: str, module: nn.Module) -> Origin:
    """Where a chain on ``module`` (loaded from ``model``, a registered name or a file) starts."""
    if model in MODELS:
        config = getattr(module, "config", None)
        return Origin({"model": model, "config": config.to_dict() if hasattr(config, "to_dict") else None})
    payload = read_checkpoint(model) if Path(model).is_file() else None
    if is_saved_model(payload) and payload.get("architecture") == "chain":
        args = payload.get("builder_args") or {}
        return Origin(dict(args.get("base") or {}), [dict(stage) for stage in args.get("stages") or []])
    if is_saved_model(payload) and payload.get("architecture") == "registered-model":
        args = payload.get("builder_args") or {}  # a registered model with its own config (e.g. a reduced teacher)
        return Origin({"model": args.get("model", "teacher"), "config": args.get("config")})
    if is_saved_model(payload):  # e.g. a distilled student: rebuilt by its own saved-model builder
        return Origin({"architecture": payload.get("architecture"), "builder_args": payload.get("builder_args") or {}})
    return Origin()


def save_compressed(variant: Variant, path: str | Path, record: dict, row: dict) -> tuple[Path, Path]:
    """Write ``variant`` to ``path`` (loadable with ``load_model(path)``) and its sidecar JSON.
    If the sidecar cannot be written the model file is removed again: both or neither."""
    path = Path(path)
    sidecar = sidecar_path(path)
    chain = [{k: stage.get(k) for k in ("method", "options", "report")} for stage in variant.stages]
    # through JSON: plain types only (e.g. torch.__version__ is a str subclass weights_only refuses)
    metadata = json.loads(render_json({"row": row, "env": record.get("env", {})}))
    save_variant(variant, path, metadata)
    document = {
        "format": SIDECAR_FORMAT,
        "model_file": path.name,
        "variant": variant.name,
        "method": variant.method,
        "int8": variant.int8,
        "base": variant.base,
        "chain": chain,
        "row": row,
        "env": record.get("env", {}),
    }
    try:
        write_atomic(sidecar, render_json(document))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, sidecar


def check_exportable(module: nn.Module) -> None:
    """Raise when ``module`` cannot be exported to ONNX (checked before the measurement)."""
    from compressbench.runtimes.onnx import export_obstacle

    obstacle = export_obstacle(module)
    if obstacle:
        raise CompressbenchError(f"--export-onnx: the final variant cannot be exported: {obstacle}")


def export_onnx_file(module: nn.Module, path: str | Path, input_shape) -> Path:
    """Export ``module`` to ONNX at ``path`` (atomically; dynamic batch axis) for inputs shaped like
    ``input_shape``; a model the exporter cannot take is one clear :class:`CompressbenchError`."""
    import torch

    from compressbench.runtimes.onnx import export_onnx

    return export_onnx(module, check_writable(path), torch.zeros(*input_shape))
