"""``compressbench compress``: apply a chain of methods, then compare every stage with the teacher.

Everything is validated before the long work starts (method names and options, output paths, the
data source, the model); files are written only after the measurement succeeded, atomically, and
removed again if a later write fails, so an error leaves no file behind.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from compressbench.cli.app import app
from compressbench.cli.common import (
    FormatOption,
    OutputOption,
    check_model_path,
    emit,
    prepare_output,
    require_non_negative,
    require_positive,
    require_seed,
)
from compressbench.cli.model_options import (
    CheckpointOption,
    ConfigOption,
    ModelOption,
    WeightsOption,
    variant_from_options,
)
from compressbench.comparison import compress_and_compare
from compressbench.comparison.hints import DEFAULT_MAX_AKD, annotate, check_bound, model_arguments
from compressbench.comparison.saving import check_exportable, write_outputs
from compressbench.compression import parse_chain, parse_set_options, stage_options
from compressbench.data import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.provenance import check_savable, load_variant, model_label, sidecar_path
from compressbench.report import check_writable
from compressbench.report.comparison_tables import comparison_sections
from compressbench.runtimes import PRECISIONS, RUNTIMES, check_runtime


def method_default(option: str, *methods: str) -> str:
    """'  [default: X]' from the compression method's own Option (the CLI option defaults to None so
    that an unset option leaves the method's default in force)."""
    from compressbench.compression import get_method

    defaults = {o.default for m in methods for o in get_method(m).options if o.name == option}
    shown = ", ".join(str(d) for d in defaults if d is not None) or "none"
    return f"  [default: {shown}]"


def _distinct_outputs(paths: dict[str, Optional[Path]]) -> None:
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        resolved = path.resolve()
        if resolved in seen:
            raise CompressbenchError(f"{flag} and {seen[resolved]} name the same file {path}; give different files")
        seen[resolved] = flag


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
    require_positive(frames=frames, input_size=input_size, threads=threads, repeats=repeats, batch=batch)
    require_non_negative(warmup=warmup)
    require_seed(seed)
    check_bound(max_akd)
    prepare_output(fmt, output)
    if out is not None:
        check_model_path(out)
    check_runtime(runtime, precision)
    chain = parse_chain(method)
    common = {
        "ratio": ratio, "importance": importance, "global_pruning": global_pruning, "iterative": iterative,
        "backend": backend, "calib": calib, "weights_only": weights_only, "rank": rank, "rank_ratio": rank_ratio,
        "multiplier": multiplier, "init": init, "fold_bn": fold_bn, "anti_alias": anti_alias,
    }  # fmt: skip
    options = stage_options(chain, common, parse_set_options(set_options))
    _distinct_outputs(
        {
            "--out": out,
            "--out's sidecar": sidecar_path(out) if out else None,
            "--output": output,
            "--export-onnx": export_onnx,
            "--export-pte": export_pte,
        }
    )
    if export_onnx is not None:
        check_writable(export_onnx)
    if export_pte is not None:
        check_runtime("executorch")  # installed? one line and exit 2 before any work if not
        check_writable(export_pte)
    if data != "synthetic" and not Path(data).exists():
        raise CompressbenchError(f"--data {data} does not exist; give 'synthetic', a folder of images or a video file")
    if teacher is not None and model_label(teacher) == model_label(model):
        raise CompressbenchError("--teacher names the model itself; leave it out (that is the default)")
    loaded = variant_from_options(model, checkpoint, config, weights)  # module, provenance and label at once
    if out is not None:
        check_savable(loaded.provenance, out)
        check_writable(sidecar_path(out))
    reference = load_variant(teacher) if teacher is not None else None

    run = compress_and_compare(
        loaded.module, chain, options, FrameSource(data, frames, seed, input_size),
        name=loaded.name, provenance=loaded.provenance, seed=seed, threads=threads, warmup=warmup,
        repeats=repeats, runtime=runtime, precision=precision, batch=batch,
        before_measure=(lambda variants: check_exportable(variants[-1].module)) if export_onnx else None,
        reference=reference.module if reference is not None else None,
        reference_name=reference.name if reference is not None else "reference",
    )  # fmt: skip
    model_args = model_arguments(
        model, config=config, checkpoint=checkpoint, weights=weights if weights != "default" else None, teacher=teacher
    )
    run = replace(run, record=annotate(run.record, max_akd, model_args))  # hints for rows above the bound
    record, written = write_outputs(run, out, export_onnx, export_pte)
    try:
        emit(record, comparison_sections(record), fmt, output)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
