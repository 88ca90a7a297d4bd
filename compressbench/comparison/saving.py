"""What ``compress`` writes besides its table: the final variant (``--out FILE`` plus ``FILE.json``)
and its ONNX export. The saved-file format and why loading it is safe: :mod:`compressbench.provenance`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.files import check_writable
from compressbench.provenance import Variant, save_variant, sidecar_path
from compressbench.records import ComparisonRecord
from compressbench.runtimes.executorch_runtime import export_pte as write_pte
from compressbench.runtimes.onnx import export_obstacle, export_onnx


def save_compressed(variant: Variant, path: str | Path, record: Mapping, row: Mapping) -> list[Path]:
    """Write ``variant`` (loadable with ``load_model(path)``) and its sidecar JSON with the measured
    row and environment (of a record, typed or as JSON); both or neither."""
    env, row = dict(record.get("env") or {}), row.to_json() if hasattr(row, "to_json") else dict(row)
    return [save_variant(variant, path, {"row": row, "env": env}, sidecar={"row": row, "env": env}), sidecar_path(path)]


def write_outputs(
    run, out: str | Path | None = None, export_onnx: str | Path | None = None, export_pte: str | Path | None = None
) -> tuple[ComparisonRecord, list[Path]]:
    """Write what a compress run was asked to keep: the final variant (``out`` and its sidecar), its
    ONNX export and its ExecuTorch program (``.pte``, XNNPACK delegate: the file a phone app loads).
    Returns the run's record naming them (``out``, ``onnx``, ``pte``: a new record) and the files
    written. All or nothing."""
    final, record = run.variants[-1], run.record
    written: list[Path] = []
    try:
        if export_onnx is not None:
            written.append(export_onnx_file(final.module, export_onnx, record.env["input_shape"]))
        if export_pte is not None:
            written.append(write_pte(final.module, export_pte, torch.zeros(record.env["input_shape"])))
        if out is not None:
            written.extend(save_compressed(final, out, record, record.rows[-1]))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    named = {"onnx": export_onnx, "pte": export_pte, "out": out}
    return replace(record, **{key: str(path) for key, path in named.items() if path is not None}), written


def check_exportable(module: nn.Module) -> None:
    """Raise when ``module`` cannot be exported to ONNX (checked before the measurement)."""
    obstacle = export_obstacle(module)
    if obstacle:
        raise CompressbenchError(f"--export-onnx: the final variant cannot be exported: {obstacle}")


def export_onnx_file(module: nn.Module, path: str | Path, input_shape) -> Path:
    """Export ``module`` to ONNX at ``path`` (atomically; dynamic batch axis) for inputs shaped like
    ``input_shape``; a model the exporter cannot take is one clear :class:`CompressbenchError`."""
    return export_onnx(module, check_writable(path), torch.zeros(*input_shape))
