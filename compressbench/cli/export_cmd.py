"""``compressbench export``: write the program a runtime timed, verified, with its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from compressbench.artifacts import EXPORT_RUNTIMES
from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, command_form, emit, prepare_output
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.compression import parse_set_options
from compressbench.errors import CompressbenchError
from compressbench.report.render import Section
from compressbench.runtimes import PRECISIONS


def export_sections(manifest: dict, folder: Path) -> list[Section]:
    latency, fidelity, check = manifest["latency"], manifest["fidelity"], manifest["verification"]
    run = manifest["runtime"]
    rows = [
        ("folder", str(folder)),
        ("files", ", ".join(f"{name} ({entry['bytes']:,} B)" for name, entry in manifest["files"].items())),
        ("runtime", f"{run['runtime']} {run['version']}, {run['precision_requested']} asked, {run['precision_used']} used"),
        ("input", f"{manifest['input']['name']} {manifest['input']['shape']} float32 NCHW RGB in [0, 1]"),
        ("latency", f"{latency['median_ms']:.3f} ms median (p10 {latency['p10_ms']:.3f}, p90 {latency['p90_ms']:.3f})"),
        ("speed-up vs eager fp32", f"{latency['speedup_vs_eager_fp32']:.2f}x (same run)"),
        ("AKD vs teacher", f"{fidelity['akd_px']:.4f} px on {fidelity['frames']} held-out frames"),
        ("reloaded AKD", f"{check['reloaded_akd_px']:.4f} px (difference {check['akd_difference_px']:+.5f}, "
                         f"allowed {check['tolerance_px']:.4f})"),  # fmt: skip
        ("machine", manifest["machine"].get("label") or manifest["machine"].get("cpu_model", "?")),
    ]
    notes = [f"not in {run['precision_requested']}: {', '.join(run['fallback_ops'])}"] if run["fallback_ops"] else []
    return [Section(f"Export of {manifest['variant']}", pd.DataFrame(rows, columns=["", "value"]), notes)]


@app.command("export")
def export_command(
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    method: Optional[str] = typer.Option(None, "--method", help="method chain applied first, e.g. exact or prune,recover,exact"),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="prune: fraction of channels removed, in (0, 1)"),
    set_options: list[str] = typer.Option([], "--set", help="STAGE.OPTION=VALUE for one stage; repeatable"),
    runtime: str = typer.Option("openvino", "--runtime", help=f"{' | '.join(EXPORT_RUNTIMES)}: the runtime that ships"),
    precision: str = typer.Option("fp32", "--precision", help=f"{' | '.join(PRECISIONS)}"),
    out: Path = typer.Option(..., "--out", help="folder to write (new, empty, or an earlier export: replaced)"),
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic, or a folder of images / a video file"),
    frames: int = typer.Option(32, "--frames", "-n", help="held-out frames the AKD and the verification use"),
    input_size: int = typer.Option(256, "--input-size", help="frame height and width in pixels"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="threads (default: torch's)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed interleaved rounds first"),
    repeats: int = typer.Option(30, "--repeats", "-r", help="timed interleaved rounds"),
    seed: int = typer.Option(0, "--seed", help="seed of frames, calibration and methods"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Export the program a runtime timed (OpenVINO IR, ONNX, ExecuTorch .pte) with a manifest.

    The file is reloaded in a fresh session and must reproduce the measured AKD; otherwise
    nothing is written.

    \b
    Example:
      compressbench export --method exact --runtime openvino --precision int8 --out exact-int8
      compressbench export --model best.pt --runtime onnxruntime --out best-ort
    """
    import compressbench.api as api

    prepare_output(fmt, output)
    namespaced = parse_set_options(set_options)
    if not method and (ratio is not None or namespaced):
        raise CompressbenchError("--ratio and --set need --method")
    result = command_form(api.export)(
        model, out, method, runtime=runtime, precision=precision, stage=namespaced, data=data, frames=frames, seed=seed,
        threads=threads, warmup=warmup, repeats=repeats, input_size=input_size, checkpoint=checkpoint, config=config,
        weights=weights, show_progress=True, **({"ratio": ratio} if ratio is not None else {}),
    )  # fmt: skip
    emit(result.manifest, export_sections(result.manifest, result.folder), fmt, output)
