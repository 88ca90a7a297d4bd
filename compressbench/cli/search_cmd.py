"""``compressbench search``: the fastest variant within an AKD bound (see compressbench.variant_search).

A thin layer over :func:`compressbench.api.search`, which checks all input before any training (bound,
budget, methods, recover options, --include files, output paths) and writes the winner and the results
JSON atomically after the measurement."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer
from rich.console import Console

from compressbench.cli.app import app
from compressbench.cli.common import (
    FormatOption,
    OutputOption,
    command_form,
    emit,
    prepare_output,
    require_non_negative,
    require_positive,
    require_seed,
)
from compressbench.cli.model_options import CheckpointOption, ConfigOption, ModelOption, WeightsOption
from compressbench.compression import parse_set_options
from compressbench.errors import CompressbenchError
from compressbench.report.render import Section
from compressbench.runtimes import PRECISIONS, RUNTIMES
from compressbench.variant_search import DEFAULT_METHODS

FRONT_COLUMNS = ("variant", "method", "recover_steps", "latency_ms", "speedup", "akd_px", "akd_px_ci95", "val_akd_px", "params")


def search_sections(record: dict) -> list[Section]:
    rows = {row["variant"]: row for row in record["rows"]}
    front = pd.DataFrame([{k: rows[name].get(k) for k in FRONT_COLUMNS} for name in record["front"]], columns=list(FRONT_COLUMNS))
    every = pd.DataFrame([{k: row.get(k) for k in FRONT_COLUMNS} for row in record["rows"]], columns=list(FRONT_COLUMNS))
    winner = record["winner"]
    notes = [
        (f"fastest within {record['max_akd']:g} px: {winner}" + _margin_note(rows[winner], record))
        if winner else f"no variant within {record['max_akd']:g} px",
        f"budget {record['budget_s']:.0f} s, spent {record['spent_s']:.0f} s"
        + (" (interrupted: results so far)" if record["interrupted"] else "")
        + _split_note(record.get("budget_split")),
        f"latency_ms and akd_px from one interleaved run with the teacher on held-out frames, on {record.get('runtime', 'torch')} "
        f"{record.get('precision', 'fp32')}; val_akd_px on calibration frames",
    ]
    sections = [Section("Pareto front (latency against AKD)", front, notes)]
    for where, elsewhere in (record.get("runtime_fronts") or {}).items():
        table = pd.DataFrame(elsewhere["rows"])
        table.insert(1, "on_front", [r["variant"] in elsewhere["front"] for r in elsewhere["rows"]])
        sections.append(Section(f"The front measured on {where}", table, [
            f"fastest within {record['max_akd']:g} px there: {elsewhere['winner'] or 'none'} (one interleaved run with the teacher)"
        ]))  # fmt: skip
    sections.append(Section("Every measured candidate", every))
    return sections


def _margin_note(row: dict, record: dict) -> str:
    """Said when the winner's held-out AKD is inside the bound by less than its own 95% interval."""
    interval = row.get("akd_px_ci95")
    if interval is None or row["akd_px"] + interval <= record["max_akd"]:
        return ""
    frames = (record.get("env") or {}).get("eval_frames")
    return (f" (flagged: its held-out AKD {row['akd_px']:.3f} +- {interval:.3f} px, 95% over "
            f"{frames or 'the'} frames, reaches past the bound; more --frames settle it)")  # fmt: skip


def _split_note(split: dict | None) -> str:
    if not split:
        return ""
    precision = split.get("precision_s") or 0.0
    return (f": {split['screening_s']:.0f} s timing skeletons and planning before training, {split['training_s']:.0f} s "
            f"training; " + (f"the precision pass took {precision:.0f} s and " if precision else "")
            + f"the final timing {split['timing_s']:.0f} s more")  # fmt: skip


@app.command("search")
def search_command(
    max_akd: float = typer.Option(1.0, "--max-akd", help="AKD bound in pixels"),
    budget: str = typer.Option("60m", "--budget", help="training budget, e.g. 90s, 60m, 1.5h"),
    model: str = ModelOption,
    checkpoint: Optional[Path] = CheckpointOption,
    config: Optional[Path] = ConfigOption,
    weights: str = WeightsOption,
    data: str = typer.Option("synthetic", "--data", "-d", help="synthetic, or a folder of images / a video file"),
    include: list[Path] = typer.Option([], "--include", help="a saved model to consider as it is; repeatable"),
    methods: str = typer.Option(",".join(DEFAULT_METHODS), "--methods", help="methods candidates may use"),
    min_steps: Optional[int] = typer.Option(
        None, "--min-steps", help="recover steps of the first halving round (each round doubles them; default: set by the budget)"
    ),
    max_steps: int = typer.Option(6400, "--max-steps", help="the most recover steps one candidate trains over all its rounds"),
    set_options: list[str] = typer.Option([], "--set", help="recover.OPTION=VALUE for every recover stage; repeatable"),
    frames: int = typer.Option(32, "--frames", "-n", help="held-out evaluation frames"),
    input_size: int = typer.Option(256, "--input-size", help="frame height and width in pixels"),
    seed: int = typer.Option(0, "--seed", help="seed of frames, methods and training"),
    threads: Optional[int] = typer.Option(None, "--threads", "-t", help="torch threads (default: torch's)"),
    warmup: int = typer.Option(5, "--warmup", help="untimed interleaved rounds first"),
    repeats: int = typer.Option(20, "--repeats", "-r", help="timed interleaved rounds"),
    runtime: Optional[str] = typer.Option(
        None, "--runtime", help=f"{' | '.join(RUNTIMES)}: where candidates are timed (default: openvino int8 when "
        "installed, else onnxruntime int8, else torch fp32)"
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help=f"{' | '.join(PRECISIONS)}: the precision candidates run in (default: int8 on the default "
        "runtime, fp32 on one you name)"
    ),
    plan: bool = typer.Option(True, "--plan/--no-plan", help="add latency-aware per-block prune candidates planned from "
                              "the runtime's per-op times"),
    fronts_on: Optional[str] = typer.Option(
        None, "--fronts-on", help="comma-separated runtimes to measure the front on too (default: the other shipping "
        "runtimes installed; '' for none)"
    ),
    cache: Path = typer.Option(Path.home() / ".cache" / "compressbench" / "search", "--cache", help="resumable cache of candidates"),
    workers: int = typer.Option(1, "--workers", help="trainers of the recover rounds: 1 trains here; more train on Ray "
                                "(make install-ray), a round's candidates at once"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="train on this Ray cluster (e.g. ray://head:10001) "
                                              "instead of a local Ray"),
    train_threads: Optional[int] = typer.Option(None, "--train-threads", help="torch threads of each training (default: "
                                                "torch's here; on Ray, the CPUs shared among --workers)"),
    out: Optional[Path] = typer.Option(None, "--out", help="save the fastest variant within the bound here"),
    export: Optional[Path] = typer.Option(
        None, "--export", help="export the winner as the file its runtime timed, with a manifest, into this folder"
    ),
    results: Optional[Path] = typer.Option(None, "--results", help="write the full results JSON here"),
    suite: Optional[Path] = typer.Option(None, "--suite", help="write a suite TOML that rebuilds the front with bench"),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
) -> None:
    """Find the fastest compressed variant whose AKD against the model stays within --max-akd.

    \b
    Example:
      compressbench search --max-akd 1.0 --budget 60m --out best.pt --results search.json --suite front.toml
      compressbench search --max-akd 1.0 --budget 30m --runtime openvino --precision int8
      compressbench search --max-akd 1.0 --budget 60m --workers 2 --train-threads 1
    """
    import compressbench.api as api

    require_positive(frames=frames, input_size=input_size, repeats=repeats, threads=threads)
    require_non_negative(warmup=warmup)
    require_seed(seed)
    prepare_output(fmt, output)
    namespaced = parse_set_options(set_options)
    stray = sorted(set(namespaced) - {"recover"})
    if stray:
        raise CompressbenchError(f"--set applies to recover only (recover.OPTION=VALUE), got {', '.join(stray)}")
    run = command_form(api.search)(
        model, max_akd=max_akd, budget=budget, checkpoint=checkpoint, config=config, weights=weights, out=out,
        export=export, results=results, suite=suite, show_progress=True,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()), include=tuple(str(p) for p in include),
        data=data, frames=frames, size=input_size, seed=seed, min_steps=min_steps, max_steps=max_steps,
        recover=namespaced.get("recover", {}), threads=threads, warmup=warmup, repeats=repeats, cache=cache,
        runtime=runtime, precision=precision, plan=plan, workers=workers, ray_address=ray_address,
        train_threads=train_threads,
        fronts_on=None if fronts_on is None else tuple(r.strip() for r in fronts_on.split(",") if r.strip()),
    )  # fmt: skip
    if run.exported is not None:
        shipped = run.exported
        Console(stderr=True).print(f"exported {run.winner.name} to {shipped.folder} ({', '.join(p.name for p in shipped.files)})")
    emit(run.record, search_sections(run.record), fmt, output)
