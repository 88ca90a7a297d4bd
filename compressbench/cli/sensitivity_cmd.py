"""``compressbench sensitivity``: per-layer int8 sensitivity and the fewest layers to keep float."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from compressbench.cli.app import app
from compressbench.cli.common import command_form, require_non_negative, require_positive, require_seed
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.compression import parse_set_options
from compressbench.compression.sensitivity import SENSITIVITY_RUNTIMES, check_arguments
from compressbench.errors import CompressbenchError
from compressbench.files import check_results_path, check_writable, render_json, write_atomic
from compressbench.report.render import check_format, print_sections, render, render_markdown
from compressbench.report.sensitivity_tables import sensitivity_sections
from compressbench.runtimes.layers import FLOAT_PRECISIONS


@app.command("sensitivity")
def sensitivity_command(
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    method: Optional[str] = typer.Option(None, "--method", help="method chain applied first, e.g. prune,recover,exact"),
    set_options: list[str] = typer.Option([], "--set", help="STAGE.OPTION=VALUE for one stage of --method; repeatable"),
    teacher: Optional[str] = typer.Option(
        None, "--teacher", help="model the AKD is measured against (default: --model before --method)"
    ),
    runtime: str = typer.Option("openvino", "--runtime", help=f"{' | '.join(SENSITIVITY_RUNTIMES)}: the int8 runtime"),
    max_akd: float = typer.Option(1.0, "--max-akd", help="AKD bound (px) the mixed precision must stay within"),
    layers: Optional[str] = typer.Option(None, "--layers", help="comma-separated layers to analyse (default: every "
                                         "convolution); the others stay int8"),  # fmt: skip
    float_precision: str = typer.Option("fp32", "--float-precision", help=f"{' | '.join(FLOAT_PRECISIONS)}: what "
                                        "float layers run in (bf16: openvino, on a CPU with bf16)"),  # fmt: skip
    calibration: Optional[str] = typer.Option(None, "--calibration", help="int8 calibration: minmax, percentile, "
                                              "entropy (or nncf on openvino)  [default: percentile]"),  # fmt: skip
    alone: bool = typer.Option(True, "--alone/--no-alone", help="also measure each layer int8 alone (the rest float)"),
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic, or a folder of images / a video file"),
    frames: int = typer.Option(32, "--frames", "-n", help="held-out evaluation frames the AKD is measured on"),
    calibration_frames: int = typer.Option(32, "--calibration-frames", help="calibration frames (never evaluated on)"),
    input_size: int = typer.Option(256, "--input-size", help="frame height and width in pixels"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="threads (default: torch's)"),
    timing: bool = typer.Option(True, "--timing/--no-timing", help="time all-int8, the mix and fp32 interleaved"),
    warmup: int = typer.Option(5, "--warmup", help="untimed interleaved rounds first"),
    repeats: int = typer.Option(20, "--repeats", "-r", help="timed interleaved rounds"),
    seed: int = typer.Option(0, "--seed", help="seed of frames, calibration and methods"),
    fmt: str = typer.Option("table", "--format", "-f", help="what stdout shows: table | md | csv | json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the JSON record to this file"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="write the tables as Markdown to this file"),
) -> None:
    """Per-layer int8 sensitivity (AKD with one layer int8, and with all but one) and the mixed
    precision that keeps the fewest layers float within --max-akd, on OpenVINO or ONNX Runtime.

    \b
    Example:
      compressbench sensitivity --runtime openvino --max-akd 0.5 -o sensitivity.json --markdown sensitivity.md
      compressbench sensitivity --method prune,recover,exact --runtime onnxruntime --max-akd 1.0
      compressbench sensitivity --model best.pt --teacher teacher --max-akd 1.0 --no-alone
    """
    import compressbench.api as api

    require_positive(frames=frames, calibration_frames=calibration_frames, input_size=input_size, threads=threads,
                     repeats=repeats)  # fmt: skip
    require_non_negative(warmup=warmup)
    require_seed(seed)
    check_format(fmt)
    check_arguments(runtime, max_akd, calibration, float_precision)
    for flag, path in (("--output", output), ("--markdown", markdown)):
        if path is not None:
            check_results_path(path, flag)
            check_writable(path)
    if output is not None and markdown is not None and output.resolve() == markdown.resolve():
        raise CompressbenchError(f"--output and --markdown name the same file {output}; give different files")
    namespaced = parse_set_options(set_options)
    if namespaced and not method:
        raise CompressbenchError("--set needs --method")
    record = command_form(api.sensitivity)(
        model, method or None, runtime=runtime, max_akd=max_akd, teacher=teacher, stage=namespaced, layers=layers,
        float_precision=float_precision, calibration=calibration, data=data, frames=frames,
        calibration_frames=calibration_frames, seed=seed, threads=threads, input_size=input_size, only_int8=alone,
        latency=timing, warmup=warmup, repeats=repeats, checkpoint=checkpoint, config=config, weights=weights,
        show_progress=True,
    ).to_json()  # fmt: skip
    sections = sensitivity_sections(record)
    if output is not None:
        write_atomic(output, render_json(record))
    if markdown is not None:
        write_atomic(markdown, render_markdown(sections))
    console = Console()
    if fmt == "table" and console.is_terminal:
        print_sections(console, sections)
    else:
        typer.echo(render(record, sections, fmt), nl=False)
    for path in (output, markdown):
        if path is not None:
            Console(stderr=True).print(f"wrote {path}")
