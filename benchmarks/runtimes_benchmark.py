"""Every runtime x precision for the teacher and a few variants, in ONE process; alone vs interleaved.

    python benchmarks/runtimes_benchmark.py            # the full run (trained teacher, 256 px)
    python benchmarks/runtimes_benchmark.py --quick    # a reduced random model, 64 px, few repeats: a smoke test

For every model (teacher, exact, prune-0.5, and saved files given with --include NAME=FILE;
--quick: teacher, prune-0.5) and every runtime x
precision that runs here (``--nncf``: also OpenVINO int8 through NNCF, beside the QDQ int8 row): speed-up over eager fp32 teacher from one interleaved run (all runners,
order rotated every round), AKD and jacobian error against the eager fp32 teacher on held-out frames,
size of what runs (ONNX graph bytes, or the state dict for torch). Then "alone vs interleaved":
each runner also timed alone, in blocks of --block consecutive calls (blocks of all runners
rotated); the goal is agreement within 5% (no runtime's idle threads slowing the next). The two
phases alternate round by round (one interleaved round, then one round of alone blocks, --rounds
times, 80 by default: with 40 the round-to-round noise pushed one runner of 24 past 5% in two runs of three; fewer rounds cut the interleaved ones into slices), and the agreement is the median over
rounds of the interleaved median over the alone median in that round, with a bootstrap interval:
each round's two phases lie seconds apart, so a machine or runner whose speed changes for minutes
(the FX int8 teacher has two speeds per process, see benchmarks/fx_int8_alone_probe.py) reaches
both alike. ``--sequential``: the design of results before 2026-12-06 (all interleaved rounds, then
--rounds rounds of alone blocks; agreement from the pooled medians); what was ``--alternate`` then
is now the default with ``--rounds 4``. "Idle spin" measures the cause directly: the CPU time the process
burns in the 10 ms after a call while the caller sleeps (CPU time, so it is not inflated by other
load on the machine). ``--pinning-ab`` adds OpenVINO fp32 with ENABLE_CPU_PINNING=False
(the plugin's default is on). Every turn and alone block starts once the process is idle (no
thread still spinning from the previous runner: :func:`compressbench.profiling.timing.wait_until_idle`).
``--omp-passive`` re-runs the script with OMP_WAIT_POLICY=PASSIVE so torch's OpenMP workers sleep
instead of busy-waiting after eager calls; that slows eager itself (+28%,
benchmarks/results/amd-epyc-avx512/omp-policy.md), so its speed-ups over eager read high: results
before 2026-12-07 used it. Writes ``runtimes.md``/``.json``
(``runtimes-quick.*`` with --quick) to --out-dir.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from compressbench.comparison.fidelity import collect_outputs, fidelity
from compressbench.comparison.table import RUNTIME_BURST
from compressbench.compression import CompressionContext, apply_chain, stage_options
from compressbench.data import frames_for
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig
from compressbench.profiling.counting import size_mb as state_size_mb
from compressbench.profiling.environment import environment
from compressbench.profiling.timing import (
    LatencyStats,
    measure_alone_and_interleaved,
    measure_interleaved,
    time_alone_round,
    torch_threads,
)
from compressbench.progress import progress_bar
from compressbench.provenance import load_model
from compressbench.report import check_writable, render_json, write_atomic
from compressbench.runtimes import PRECISIONS, RUNTIMES, Prepared, RuntimeMissing, RuntimeUnavailable, prepare
from compressbench.runtimes.base import openmp_wait_policy
from compressbench.runtimes.openvino_runtime import OpenVinoRunner, compile_graph
from compressbench.runtimes.qdq import CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD

QUICK_CONFIG = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
MODELS = {"teacher": None, "exact": (("exact",), {}), "prune-0.5": (("prune",), {"ratio": 0.5})}
QUICK_MODELS = ("teacher", "prune-0.5")
AGREEMENT_PCT = 5.0
SPIN_WINDOW_S = 0.01


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced random model, 64 px, 4 frames, few repeats")
    parser.add_argument("--weights", default="default", choices=("default", "random"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=None, help="interleaved warm-up rounds; default 10 (1 quick)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds; default 80 (40 --sequential, 3 quick)")
    parser.add_argument("--block", type=int, default=None,
                        help="consecutive timed calls per alone block; default 16 (40 --sequential, 3 quick)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of alone blocks, each after a slice of the interleaved rounds; default --repeats (3 --sequential)")  # fmt: skip
    parser.add_argument("--sequential", action="store_true",
                        help="the old design: every interleaved round first, then the alone rounds")  # fmt: skip
    parser.add_argument("--frames", type=int, default=None, help="held-out frames; default 32 (4 quick)")
    parser.add_argument("--calib", type=int, default=None, help="calibration frames; default 64 (8 quick)")
    parser.add_argument("--calibration", default=DEFAULT_CALIBRATION_METHOD, choices=CALIBRATION_METHODS,
                        help="QDQ int8 calibration method")  # fmt: skip
    parser.add_argument("--models", default=None, help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--include", action="append", default=[], metavar="NAME=FILE",
                        help="also a saved model file (e.g. a recovered variant), measured as NAME; repeatable")
    parser.add_argument("--burst", type=int, default=RUNTIME_BURST,
                        help="interleaved turns of 1 untimed + BURST timed calls (1: one timed call per turn)")  # fmt: skip
    parser.add_argument("--nncf", action="store_true", help="also OpenVINO int8 through NNCF (OpenVINO's own path)")
    parser.add_argument("--pinning-ab", action="store_true", help="also OpenVINO fp32 with ENABLE_CPU_PINNING=False")
    parser.add_argument("--omp-passive", action="store_true", help="run with OMP_WAIT_POLICY=PASSIVE (re-executes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    q = args.quick
    for name, full, quick in (("warmup", 10, 1), ("repeats", 40 if args.sequential else 80, 3), ("block", 40 if args.sequential else 16, 3),
                              ("frames", 32, 4), ("calib", 64, 8)):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    if args.rounds is None:
        args.rounds = 3 if args.sequential else args.repeats
    for name in ("repeats", "block", "rounds"):
        if getattr(args, name) < 1:
            raise CompressbenchError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not args.sequential and args.rounds > args.repeats:
        raise CompressbenchError(f"--rounds ({args.rounds}) cannot exceed --repeats ({args.repeats}): each alone round follows a slice of interleaved rounds")
    args.size = 64 if q else 256
    if q:
        args.weights = "random"
    names = [n.strip() for n in args.models.split(",")] if args.models else list(QUICK_MODELS if q else MODELS)
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise CompressbenchError(f"--models: unknown {', '.join(unknown)}; known: {', '.join(MODELS)}")
    args.model_names = names
    args.included = {}
    for item in args.include:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise CompressbenchError(f"--include: expected NAME=FILE with an existing file, got {item!r}")
        args.included[name] = path
    return args


def build_models(args) -> dict[str, torch.nn.Module]:
    config = QUICK_CONFIG if args.quick else None
    teacher = load_model("teacher", config=config, weights=args.weights).eval()
    context = CompressionContext(
        calibration_frames=lambda n: frames_for("synthetic", n, split="train", seed=args.seed, size=args.size).images,
        input_shape=(1, 3, args.size, args.size), seed=args.seed, show_progress=False,
    )  # fmt: skip
    models = {}
    for name in args.model_names:
        if MODELS[name] is None:
            models[name] = teacher
            continue
        chain, common = MODELS[name]
        torch.manual_seed(args.seed)
        models[name] = apply_chain(teacher, list(chain), stage_options(list(chain), common, {}), context)[-1][0].eval()
    for name, path in args.included.items():
        models[name] = load_model(path).eval()
    return models


def size_mb(prepared: Prepared) -> float:
    if prepared.size_bytes is not None:
        return prepared.size_bytes / 1e6
    if prepared.graph is not None:
        return len(prepared.graph) / 1e6
    return state_size_mb(prepared.module)


def time_sequential(runners: dict, args, on_step) -> dict[str, dict]:
    """The old design: every interleaved round, then ``args.rounds`` rounds of alone blocks (after
    ``args.warmup`` calls each); agreement from the pooled medians, no interval."""
    interleaved = measure_interleaved(runners, args.warmup, args.repeats, lambda _: on_step(), args.burst)
    alone: dict[str, list[float]] = {key: [] for key in runners}
    with torch.inference_mode():
        for key in runners:
            for _ in range(args.warmup):
                runners[key]()
        for r in range(args.rounds):
            for key, samples in time_alone_round(runners, args.block, r).items():
                alone[key] += samples
            on_step()
    out = {}
    for key, stats in interleaved.items():
        a = LatencyStats.from_samples(alone[key])
        out[key] = {"interleaved": stats, "alone": a, "pct": 100.0 * (stats.median - a.median) / a.median, "interval": None}
    return out


def time_paired(runners: dict, args, on_step) -> dict[str, dict]:
    """The alternating design (see the module's docstring), through the library's timing."""
    agreements = measure_alone_and_interleaved(runners, args.warmup, args.repeats, args.rounds, args.block, args.burst, on_step)
    return {key: {"interleaved": a.interleaved, "alone": a.alone, "pct": a.pct, "interval": list(a.interval_pct()),
                  "round_ratios": list(a.round_ratios)}
            for key, a in agreements.items()}  # fmt: skip


def idle_spin(fn, window_s: float = SPIN_WINDOW_S, calls: int = 15) -> float:
    """Cores this process keeps busy while the caller sleeps ``window_s`` right after ``fn()``: its
    idle worker threads spinning (CPU time, so other load on the machine does not inflate it).
    Median over ``calls``."""
    busy = []
    for _ in range(calls):
        fn()
        start = time.process_time()
        time.sleep(window_s)
        busy.append((time.process_time() - start) / window_s)
    return sorted(busy)[len(busy) // 2]


def run(argv: list[str]) -> Path:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/runtimes_benchmark.py", *argv])
    stem = "runtimes-quick" if args.quick else "runtimes"  # a smoke test never overwrites real results
    md_path, json_path = args.out_dir / f"{stem}.md", args.out_dir / f"{stem}.json"
    check_writable(md_path), check_writable(json_path)
    torch.manual_seed(args.seed)
    models = build_models(args)
    teacher = models["teacher"] if "teacher" in models else next(iter(models.values()))
    eval_images = frames_for("synthetic", args.frames, split="test", seed=args.seed, size=args.size).images
    calibration = frames_for("synthetic", args.calib, split="train", seed=args.seed, size=args.size).images
    batch = eval_images[torch.arange(args.batch) % len(eval_images)].contiguous()
    rows, runners, notes = [], {}, []
    order = ["torch", "onnxruntime", "openvino"] + [
        r for r in RUNTIMES.names() if r not in ("torch", "onnxruntime", "openvino")
    ]
    qdq = ("onnxruntime", "openvino")  # the runtimes whose int8 takes a QDQ calibration method
    combos = [(m, r, p, args.calibration if p == "int8" and r in qdq else None) for m in models for r in order for p in PRECISIONS]
    if args.nncf:  # OpenVINO's own int8 path beside the QDQ one, right after it
        at = {(m, r, p): i for i, (m, r, p, _) in enumerate(combos)}
        for m in reversed(list(models)):
            combos.insert(at[(m, "openvino", "int8")] + 1, (m, "openvino", "int8", "nncf"))
    with torch_threads(args.threads) as threads:
        reference = collect_outputs(teacher, eval_images)
        with progress_bar("preparing runners", len(combos), True) as advance:
            for model_name, runtime, precision, method in combos:
                row = {"model": model_name, "runtime": runtime, "precision": precision, "int8_method": method}
                try:
                    prepared = prepare(runtime, models[model_name], batch, threads, precision, calibration, method)
                except RuntimeMissing as exc:
                    if f"{runtime}: {exc}" not in notes:
                        notes.append(f"{runtime}: {exc}")
                    advance()
                    continue
                except RuntimeUnavailable as exc:
                    notes.append(f"{model_name} {runtime} {precision}: {exc}")
                    advance()
                    continue
                key = f"{model_name}|{runtime}|{precision}" + ("-nncf" if method == "nncf" else "")
                runners[key] = prepared
                row.update(key=key, precision_used=prepared.record.precision_used, version=prepared.record.version,
                           size_mb=size_mb(prepared), record=prepared.record.to_dict(), note=prepared.note)  # fmt: skip
                row.update(fidelity(collect_outputs(prepared.outputs, eval_images), reference, args.size))
                rows.append(row)
                advance()
        if args.pinning_ab and "teacher|openvino|fp32" in runners:
            base = runners["teacher|openvino|fp32"]
            unpinned = OpenVinoRunner(
                compile_graph(base.graph, batch, threads, "fp32", extra={"ENABLE_CPU_PINNING": False})
            )
            runners["teacher|openvino-unpinned|fp32"] = Prepared(unpinned, batch, base.record, graph=base.graph)
            rows.append({**next(r for r in rows if r.get("key") == "teacher|openvino|fp32"),
                         "runtime": "openvino-unpinned", "key": "teacher|openvino-unpinned|fp32",
                         "note": "ENABLE_CPU_PINNING=False (A/B only)"})  # fmt: skip
        steps = args.repeats + args.rounds
        with progress_bar(f"timing {len(runners)} runners, interleaved and alone", steps, True) as advance:
            timed = (time_sequential if args.sequential else time_paired)(runners, args, advance)
        with torch.inference_mode():
            spin = {key: idle_spin(runner) for key, runner in runners.items()}
    eager = timed["teacher|torch|fp32"]["interleaved"] if "teacher|torch|fp32" in timed else None
    for row in rows:
        t = timed[row["key"]]
        s, a = t["interleaved"], t["alone"]
        row.update(latency_ms=s.median, latency_p10=s.p10, latency_p90=s.p90, alone_ms=a.median,
                   interleaved_vs_alone_pct=t["pct"], interleaved_vs_alone_interval=t["interval"],
                   round_ratios=t.get("round_ratios"), idle_spin_cores=spin[row["key"]],
                   speedup=eager.median / s.median if eager else None)  # fmt: skip
    record = {
        "rows": rows,
        "notes": notes,
        "env": {**environment(threads), "batch": args.batch, "input_size": args.size, "warmup": args.warmup,
                "repeats": args.repeats, "burst": args.burst, "block": args.block, "rounds": args.rounds, "sequential": args.sequential, "eval_frames": args.frames,
                "calibration_frames": args.calib, "calibration_method": args.calibration, "weights": args.weights,
                "omp_wait_policy": openmp_wait_policy(), "settle": True},
        "command": command,
    }  # fmt: skip
    write_atomic(json_path, render_json(record))
    write_atomic(md_path, markdown(record))
    print(md_path)
    return md_path


def cell(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}"


def agreeing(rows: list[dict]) -> str:
    within = sum(abs(row["interleaved_vs_alone_pct"]) <= AGREEMENT_PCT for row in rows)
    return f"{within} of {len(rows)} runners within"


def markdown(record: dict) -> str:
    env = record["env"]
    lines = [
        "# Runtimes benchmark",
        "",
        f"Command: `{record['command']}`",
        "",
        f"{env['cpu']} ({env['cpu_count']} CPUs), torch {env['torch']}, {env['threads']} threads, batch {env['batch']}, "
        f"{env['input_size']} px, {env['weights']} weights, OMP_WAIT_POLICY {env['omp_wait_policy']}, {env['date']}. Speed-up = eager fp32 teacher median / row "
        f"median from one interleaved run ({env['repeats']} rounds after {env['warmup']}"
        + (f"; each turn 1 untimed + {env['burst']} timed calls" if env.get("burst", 1) > 1 else "")
        + ("; every turn and alone block after the process is idle" if env.get("settle") else "")
        + f"). Alone = each runner in "
        f"blocks of 1 untimed + {env['block']} timed calls ({env['rounds']} rounds"
        + (", after the interleaved run; agreement from the pooled medians" if env.get("sequential", True)
           else ", each after a slice of the interleaved rounds: the phases alternate; agreement = median over rounds "
                "of the round's interleaved median / alone median, 95% bootstrap interval over rounds")
        + f"); goal: interleaved within {AGREEMENT_PCT:g}% of alone: {agreeing(record['rows'])}. "
        f"AKD (px of the {env['input_size']} px frame) and jacobian error against the eager fp32 teacher on "
        f"{env['eval_frames']} held-out frames; int8 = {env['calibration_method']} calibration on "
        f"{env['calibration_frames']} training-split frames (int8 NNCF: OpenVINO's own post-training quantization on the same frames). "
        "Size: ONNX graph bytes, OpenVINO IR bytes (NNCF), or the torch state dict (MB = 10^6 B). "
        f"Idle spin: cores of CPU time the process burns in the {SPIN_WINDOW_S * 1000:g} ms after a call while the caller "
        "sleeps (its idle threads spinning into whatever runs next; median of 15).",
        "",
        "| model | runtime | precision (used) | speedup | interleaved ms (p10-p90) | alone ms | interleaved vs alone | idle spin (cores) | akd_px | jacobian_error | size_mb |",
        "|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in record["rows"]:
        asked = row["precision"] + (" NNCF" if row.get("int8_method") == "nncf" else "")
        used = asked if row["precision_used"] == row["precision"] else f"{asked} ({row['precision_used']})"
        flag = "" if abs(row["interleaved_vs_alone_pct"]) <= AGREEMENT_PCT else " !"
        interval = row.get("interleaved_vs_alone_interval")
        spread = f" ({interval[0]:+.1f} to {interval[1]:+.1f})" if interval else ""
        lines.append(
            f"| {row['model']} | {row['runtime']} {row['version']} | {used} | {cell(row['speedup'], 2)}x | "
            f"{cell(row['latency_ms'])} ({cell(row['latency_p10'])}-{cell(row['latency_p90'])}) | {cell(row['alone_ms'])} | "
            f"{row['interleaved_vs_alone_pct']:+.1f}%{spread}{flag} | {cell(row['idle_spin_cores'], 2)} | {cell(row['akd_px'])} | {cell(row['jacobian_error'], 4)} | "
            f"{cell(row['size_mb'])} |"
        )
    row_notes = [
        f"- {r['model']} {r['runtime']} {r['precision']}: {r['note']}" for r in record["rows"] if r.get("note")
    ]
    unavailable = [f"- not run: {n}" for n in record["notes"]]
    if row_notes or unavailable:
        lines += ["", *row_notes, *unavailable]
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--omp-passive" in sys.argv[1:] and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        # libgomp reads the policy when torch is imported: only a fresh process can change it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    try:
        run(sys.argv[1:])
    except CompressbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
