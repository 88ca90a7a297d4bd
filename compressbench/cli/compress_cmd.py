"""``compressbench compress``: apply a chain of methods, then compare every stage with the teacher.

A thin layer over :func:`compressbench.api.compress`, which validates everything before the long
work starts (method names and options, output paths, the data source, the model) and writes files
only after the measurement succeeded, atomically; they are removed again if printing the table
fails, so an error leaves no file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import FormatOption, OutputOption, command_form, emit, prepare_output
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.comparison.hints import DEFAULT_MAX_AKD
from compressbench.compression import parse_set_options
from compressbench.provenance import sidecar_path
from compressbench.report.comparison_tables import comparison_sections
from compressbench.runtimes import PRECISIONS, RUNTIMES


def method_default(option: str, *methods: str) -> str:
    """'  [default: X]' from the compression method's own Option (the CLI option defaults to None so
    that an unset option leaves the method's default in force)."""
    from compressbench.compression import get_method

    defaults = {o.default for m in methods for o in get_method(m).options if o.name == option}
    shown = ", ".join(str(d) for d in defaults if d is not None) or "none"
    return f"  [default: {shown}]"


@app.command("compress")
def compress_command(
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    method: str = typer.Option(
        ..., "--method", help="method chain, comma-separated, e.g. prune or exact,prune,quantize"
    ),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="prune: fraction of channels removed, in (0, 1)" + method_default("ratio", "prune")),
    importance: Optional[str] = typer.Option(
        None, "--importance", help="prune: channel importance (l1, l2, bn-scale, taylor, random)" + method_default("importance", "prune")
    ),
    global_pruning: Optional[bool] = typer.Option(
        None, "--global/--uniform", help="prune: rank channels across all layers or per layer  [default: uniform]"
    ),
    iterative: Optional[int] = typer.Option(None, "--iterative", help="prune: number of steps reaching the ratio" + method_default("iterative", "prune")),
    backend: Optional[str] = typer.Option(None, "--backend", help="quantize: int8 backend (fx, onnxruntime, pt2e)" + method_default("backend", "quantize")),
    calib: Optional[int] = typer.Option(None, "--calib", help="quantize: calibration frames" + method_default("calib", "quantize")),
    weights_only: Optional[bool] = typer.Option(
        None, "--weights-only", is_flag=True, help="quantize: 8-bit codebook weights only (float arithmetic)  [default: off]"
    ),
    rank: Optional[int] = typer.Option(None, "--rank", help="asym: channels between the 3x1 and the 1x3  [default: the full rank]"),
    rank_ratio: Optional[float] = typer.Option(
        None, "--rank-ratio", help="asym: rank as a fraction of each layer's full rank"
    ),
    multiplier: Optional[int] = typer.Option(None, "--multiplier", help="dsconv: depthwise channels per input channel" + method_default("multiplier", "dsconv")),
    init: Optional[str] = typer.Option(None, "--init", help="asym/dsconv: svd (closed form) or random" + method_default("init", "asym", "dsconv")),
    fold_bn: Optional[bool] = typer.Option(
        None, "--fold-bn/--no-fold-bn", help="exact: fold BatchNorm into convolutions  [default: fold-bn]"
    ),
    anti_alias: Optional[bool] = typer.Option(
        None, "--anti-alias/--no-anti-alias", help="exact: strided separable anti-alias blur  [default: anti-alias]"
    ),
    set_options: list[str] = typer.Option(
        [], "--set", help="STAGE.OPTION=VALUE for one stage (method name or 1-based index); repeatable"
    ),
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic, or a folder of images / a video file"),
    frames: int = typer.Option(32, "--frames", "-n", help="held-out evaluation frames"),
    input_size: int = typer.Option(256, "--input-size", help="frame height and width in pixels"),
    runtime: str = typer.Option("torch", "--runtime", help=f"{' | '.join(RUNTIMES)}: where every row runs"),
    precision: str = typer.Option("fp32", "--precision", help=f"{' | '.join(PRECISIONS)}: the precision rows run in"),
    export_onnx: Optional[Path] = typer.Option(
        None, "--export-onnx", help="also export the final variant to this ONNX file"
    ),
    export_pte: Optional[Path] = typer.Option(
        None, "--export-pte", help="also export the final variant as an ExecuTorch .pte (XNNPACK delegate)"
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="save the final variant here (loadable with --model FILE) plus FILE.json"
    ),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads (default: torch's)"),
    warmup: int = typer.Option(10, "--warmup", help="untimed interleaved rounds first"),
    repeats: int = typer.Option(30, "--repeats", "-r", help="timed interleaved rounds"),
    seed: int = typer.Option(0, "--seed", help="seed of frames, calibration and methods"),
    max_akd: float = typer.Option(
        DEFAULT_MAX_AKD, "--max-akd", help="AKD bound (px): rows above it get a note with the recover command"
    ),
    batch: int = typer.Option(1, "--batch", "-b", help="batch size of the timed input"),
    teacher: Optional[str] = typer.Option(
        None, "--teacher", help="model recover fine-tunes towards and every row is compared with (default: --model)"
    ),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Compress a model with a chain of methods and compare every stage with it.

    \b
    Example:
      compressbench compress --method exact,quantize --out small.pt
      compressbench compress --method prune --ratio 0.3 --format md -o prune.md
      compressbench compress --model pruned.pt --teacher teacher --method recover --set recover.steps=800
    """
    import compressbench.api as api

    prepare_output(fmt, output)
    api.check_distinct_files(
        {
            "--out": out,
            "--out's sidecar": sidecar_path(out) if out else None,
            "--output": output,
            "--export-onnx": export_onnx,
            "--export-pte": export_pte,
        }
    )
    common = {
        "ratio": ratio, "importance": importance, "global_pruning": global_pruning, "iterative": iterative,
        "backend": backend, "calib": calib, "weights_only": weights_only, "rank": rank, "rank_ratio": rank_ratio,
        "multiplier": multiplier, "init": init, "fold_bn": fold_bn, "anti_alias": anti_alias,
    }  # fmt: skip
    run = command_form(api.compress)(
        model, method, stage=parse_set_options(set_options), data=data, frames=frames, seed=seed, threads=threads,
        warmup=warmup, repeats=repeats, runtime=runtime, precision=precision, batch=batch, input_size=input_size,
        show_progress=True, teacher=teacher, checkpoint=checkpoint, config=config, weights=weights, max_akd=max_akd,
        out=out, export_onnx=export_onnx, export_pte=export_pte, **common,
    )  # fmt: skip
    try:
        emit(run.record, comparison_sections(run.record), fmt, output)
    except BaseException:
        for path in run.written:
            path.unlink(missing_ok=True)
        raise
