"""Exported artifacts: the very program a runtime timed, written as the file a user ships, reloaded
and checked before it is handed over, with a manifest that says what it is and how it measured.

:func:`export_variant` compresses (or takes) a model, measures it on the target runtime against the
eager fp32 teacher in one interleaved run (:func:`compressbench.comparison.compare`), and keeps the
runner that was timed. Its runtime writes that program (:meth:`Runtime.write_artifact`: OpenVINO
IR, the ONNX graph ONNX Runtime ran, the ExecuTorch ``.pte``) into a temporary folder beside
``out``; the file is then loaded in a fresh session of the runtime (:meth:`Runtime.load_artifact`)
and scored on the same held-out frames. Only if its AKD against the teacher matches the measured
one (within :data:`AKD_TOLERANCE_PX`, or :data:`AKD_TOLERANCE_SHARE` of it) is the folder moved into
place, with ``manifest.json``; otherwise nothing is written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from compressbench.comparison import compare, compress_and_compare
from compressbench.comparison.fidelity import Outputs, collect_outputs, fidelity
from compressbench.data import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import files_bytes
from compressbench.profiling.machine import this_machine
from compressbench.provenance import Provenance, Variant
from compressbench.records import ComparisonRow, LatencySummary
from compressbench.runtimes import Prepared, RuntimeUnavailable, check_runtime
from compressbench.runtimes.base import parse_runtime

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "compressbench-export/1"
AKD_TOLERANCE_PX = 0.005
AKD_TOLERANCE_SHARE = 0.01
INPUT_CONTRACT = {"dtype": "float32", "layout": "NCHW", "channels": "RGB", "range": [0.0, 1.0]}


EXPORT_RUNTIMES = ("openvino", "onnxruntime", "executorch")  # the runtimes whose files ship

@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_variant` wrote: the folder, its files (main file first) and the manifest."""

    folder: Path
    files: tuple[Path, ...]
    manifest: dict

    @property
    def main_file(self) -> Path:
        return self.files[0]


def check_export_folder(out: Path) -> Path:
    """``out`` may not exist yet, or be an empty folder or an earlier export (it is replaced); its
    parent must be a writable folder. Checked before any work."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CompressbenchError(f"--out {out} is a file; give a folder for the export")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise CompressbenchError(f"--out {out} is a folder with other files in it; give a new or empty folder")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise CompressbenchError(f"--out {out}: folder {parent} does not exist; create it first")
    try:
        tempfile.TemporaryDirectory(dir=parent).cleanup()
    except OSError as exc:
        raise CompressbenchError(f"--out {out}: cannot write in {parent} ({exc.strerror})") from None
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("compressbench")
    except PackageNotFoundError:  # run from a checkout pip does not know
        return "unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tolerance(akd: float) -> float:
    return max(AKD_TOLERANCE_PX, AKD_TOLERANCE_SHARE * akd)


def _latency(row: ComparisonRow) -> dict:
    """The manifest's latency: the row's summary under the manifest's names (``median_ms``, ...)."""
    summary = row.latency.to_json("manifest") if row.latency is not None else LatencySummary.empty("manifest")
    return {**summary, "speedup_vs_eager_fp32": row.speedup_vs_eager_fp32}


def export_variant(
    model: nn.Module,
    provenance: Provenance,
    name: str,
    chain: list[str],
    options: list[dict],
    frames: FrameSource,
    out: Path,
    *,
    runtime: str = "openvino",
    precision: str = "fp32",
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    seed: int = 0,
    show_progress: bool = True,
    reference: nn.Module | None = None,
    reference_name: str = "teacher",
) -> ExportResult:
    """Compress ``model`` (from ``provenance``) with ``chain`` (may be empty), measure the result on
    ``runtime`` at ``precision`` against the eager fp32 model (or ``reference``, e.g. the teacher of a
    search winner, named ``reference_name``), write the timed program and its manifest into folder
    ``out``, verified by reloading it; see the module docstring."""
    runtime, precision = parse_runtime(runtime, precision)
    backend = check_runtime(runtime, precision)
    out = check_export_folder(out)
    kept: dict[str, Prepared] = {}
    settings = {"threads": threads, "warmup": warmup, "repeats": repeats, "runtime": runtime, "precision": precision,
                "show_progress": show_progress}  # fmt: skip
    against = reference if reference is not None else model  # what fidelity is measured against
    evaluation = frames.evaluation()  # read once: the measurement's held-out frames are the verification's
    if chain:
        run = compress_and_compare(model, chain, options, frames, name=name, provenance=provenance, seed=seed,
                                   reference=reference, reference_name=reference_name, keep_runners=kept, **settings)  # fmt: skip
        record, final = run.record, run.final
    else:
        final = Variant(name, model, provenance)
        measured = [final] if reference is not None else []
        record = compare(against, measured, evaluation,
                         teacher_name=reference_name if reference is not None else name, breakdown=False,
                         keep_runners=kept, **settings)  # fmt: skip
    row = record.rows[-1]
    prepared = kept.get(row.variant)
    if prepared is None:
        raise CompressbenchError(f"{row['variant']} cannot run on {runtime} {precision}: {row.get('note') or 'unavailable'}")
    images = getattr(evaluation, "images", evaluation)
    teacher_outputs = collect_outputs(against, images)
    size = int(images.shape[-1])

    parent = out.resolve().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=parent))
    try:
        try:
            files = backend.write_artifact(prepared, staging)
            outputs = {k: list(v.shape) for k, v in prepared().items()}
            runner = backend.load_artifact(files[0], prepared.record.threads, precision, list(outputs))
        except RuntimeUnavailable as exc:
            raise CompressbenchError(f"cannot export {row['variant']} for {runtime}: {exc}") from None
        reloaded = Prepared(runner, prepared.batch, prepared.record).outputs(images)
        timed = prepared.outputs(images)
        agreement = fidelity(Outputs(reloaded["value"], reloaded.get("jacobian")), teacher_outputs, size)
        measured = row["akd_px"]
        difference = agreement["akd_px"] - measured
        largest = max(float((reloaded[k] - timed[k]).abs().max()) for k in timed)
        if abs(difference) > _tolerance(measured):
            raise CompressbenchError(
                f"the exported {files[0].name} does not reproduce the measurement: AKD {agreement['akd_px']:.4f} px "
                f"reloaded against {measured:.4f} px measured; nothing was written"
            )
        manifest = {
            "format": MANIFEST_FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "compressbench": _version(),
            "variant": row["variant"],
            "provenance": final.provenance.to_json(with_reports=False),
            "input": {"name": "images", "shape": list(prepared.batch.shape), **INPUT_CONTRACT},
            "outputs": outputs,
            "counts": {"params": row.params, "macs": row.macs, "size_bytes": files_bytes(files)},
            "runtime": {**prepared.record.to_dict(), "load": _load_hint(runtime, precision)},
            "machine": this_machine(prepared.record.threads).to_dict(),
            "latency": _latency(row),
            "fidelity": {
                "against": record["rows"][0]["variant"] + " (eager fp32)",
                "frames": len(images),
                "data": frames.data,
                "akd_px": measured,
                "jacobian_error": row.get("jacobian_error"),
            },
            "verification": {
                "reloaded_akd_px": agreement["akd_px"],
                "akd_difference_px": difference,
                "tolerance_px": _tolerance(measured),
                "max_abs_output_difference": largest,
            },
            "health": record.get("health"),
            "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; an export is an ordinary folder
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, tuple(out / p.name for p in files), manifest)


def _load_hint(runtime: str, precision: str) -> dict:
    """How to compile the file as it was measured, in the runtime's own terms."""
    if runtime == "openvino":
        from compressbench.runtimes.openvino_runtime import HINTS

        return {"device": "CPU", "config": {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}}
    if runtime == "onnxruntime":
        return {"providers": ["CPUExecutionProvider"]}
    return {}
