"""What ``compress`` writes besides its table: the final variant (``--out FILE`` plus ``FILE.json``)
and its ONNX export. The saved-file format and why loading it is safe: :mod:`compressbench.provenance`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.provenance import Variant, save_variant, sidecar_path
from compressbench.report import check_writable
from compressbench.runtimes.executorch_runtime import export_pte as write_pte
from compressbench.runtimes.onnx import export_obstacle, export_onnx


def save_compressed(variant: Variant, path: str | Path, record: dict, row: dict) -> list[Path]:
    """Write ``variant`` (loadable with ``load_model(path)``) and its sidecar JSON with the measured
    row and environment; both or neither."""
    env = record.get("env", {})
    return [save_variant(variant, path, {"row": row, "env": env}, sidecar={"row": row, "env": env}), sidecar_path(path)]


def write_outputs(
    run, out: str | Path | None = None, export_onnx: str | Path | None = None, export_pte: str | Path | None = None
) -> list[Path]:
    """Write what a compress run was asked to keep: the final variant (``out`` and its sidecar), its
    ONNX export and its ExecuTorch program (``.pte``, XNNPACK delegate: the file a phone app loads);
    the record names them (``out``, ``onnx``, ``pte``). All or nothing."""
    final = run.variants[-1]
    written: list[Path] = []
    try:
        if export_onnx is not None:
            written.append(export_onnx_file(final.module, export_onnx, run.record["env"]["input_shape"]))
            run.record["onnx"] = str(export_onnx)
        if export_pte is not None:
            written.append(write_pte(final.module, export_pte, torch.zeros(run.record["env"]["input_shape"])))
            run.record["pte"] = str(export_pte)
        if out is not None:
            written.extend(save_compressed(final, out, run.record, run.record["rows"][-1]))
            run.record["out"] = str(out)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def check_exportable(module: nn.Module) -> None:
    """Raise when ``module`` cannot be exported to ONNX (checked before the measurement)."""
    obstacle = export_obstacle(module)
    if obstacle:
        raise CompressbenchError(f"--export-onnx: the final variant cannot be exported: {obstacle}")


def export_onnx_file(module: nn.Module, path: str | Path, input_shape) -> Path:
    """Export ``module`` to ONNX at ``path`` (atomically; dynamic batch axis) for inputs shaped like
    ``input_shape``; a model the exporter cannot take is one clear :class:`CompressbenchError`."""
    return export_onnx(module, check_writable(path), torch.zeros(*input_shape))
