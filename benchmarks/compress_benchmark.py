"""Every compression method against the teacher, measured in ONE process with interleaved timing.

    python benchmarks/compress_benchmark.py            # the full run (trained teacher, 256 px, 30 repeats)
    python benchmarks/compress_benchmark.py --quick    # a reduced random model, 64 px, 2 repeats: a smoke test

Variants: exact; prune 0.3/0.5/0.7; quantize with every int8 backend this machine can run, and
weight-only codebooks; asym and dsconv (SVD initialisation) at a few ranks; prune 0.5 + quantize;
exact + prune 0.5 + quantize (run as prune, exact, quantize: chains fold BatchNorm after pruning);
prune 0.5 and 0.7 recovered (``recover``, 300 steps; 2 with --quick), and prune 0.5 + recover + quantize. Writes ``compress.md`` (speed-up, AKD, jacobian error, parameters,
size) and ``compress.json`` (the full comparison record) to ``--out-dir``, the command in the header
(``compress-quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compressbench.comparison import compare
from compressbench.compression import CompressionContext, compress, stage_options
from compressbench.compression.quantize.backends import BACKENDS
from compressbench.data import frames_for
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, load_model
from compressbench.report import check_writable, render_json, write_atomic

QUICK_CONFIG = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
RECOVER = {"steps": 300}
QUICK_RECOVER = {"steps": 2, "pool": 8, "batch": 4, "val_frames": 4, "val_every": 1}


@dataclass(frozen=True)
class Spec:
    """One benchmark row: a name, a method chain and its options (common, and per stage)."""

    name: str
    chain: tuple[str, ...]
    common: dict = field(default_factory=dict)
    per_stage: dict = field(default_factory=dict)


def specs(quick: bool) -> list[Spec]:
    """The variants to measure; ``quick`` keeps one setting per swap method."""
    rows = [Spec("exact", ("exact",))]
    rows += [Spec(f"prune-{r}", ("prune",), {"ratio": r}) for r in (0.3, 0.5, 0.7)]
    rows += [Spec(f"quantize-{b}", ("quantize",), {"backend": b}) for b in BACKENDS.names()]
    rows.append(Spec("quantize-weights-only", ("quantize",), {"weights_only": True}))
    rows += [
        Spec(f"asym-r{r}", ("asym",), {"rank_ratio": r, "init": "svd"}) for r in ((0.5,) if quick else (0.1, 0.25, 0.5))
    ]
    rows += [
        Spec(f"dsconv-m{m}", ("dsconv",), {"multiplier": m, "init": "svd"}) for m in ((2,) if quick else (1, 2, 4))
    ]
    rows.append(Spec("exact+quantize", ("exact", "quantize"), {}))
    rows.append(Spec("prune-0.5+quantize", ("prune", "quantize"), {"ratio": 0.5}))
    rows.append(Spec("exact+prune-0.5+quantize", ("exact", "prune", "quantize"), {"ratio": 0.5}))
    recover = {"recover": QUICK_RECOVER if quick else RECOVER}
    rows += [Spec(f"prune-{r}+recover", ("prune", "recover"), {"ratio": r}, recover) for r in (0.5, 0.7)]
    rows.append(Spec("prune-0.5+recover+quantize", ("prune", "recover", "quantize"), {"ratio": 0.5}, recover))
    return rows


def unavailable(spec: Spec) -> str | None:
    """Why this machine cannot build ``spec`` (e.g. a quantize backend needing torchao), or None."""
    backend = spec.common.get("backend")
    if backend is None:
        return None
    try:
        BACKENDS.get(backend).check_available()
    except CompressbenchError as exc:
        return str(exc)
    return None


def build(teacher: torch.nn.Module, spec: Spec, context: CompressionContext, calib: int, base: dict):
    """The final variant of ``spec``'s chain, named after the spec."""
    common = dict(spec.common)
    if "quantize" in spec.chain:
        common.setdefault("calib", calib)
    options = stage_options(list(spec.chain), common, spec.per_stage)
    variant = compress(teacher, list(spec.chain), options, context, base=base)[-1]
    variant.name = spec.name
    return variant


def cell(value) -> str:
    """A table cell: '-' for missing, thousands separators for counts, 3-4 significant figures."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5) else f"{value:.3f}"


def markdown(record: dict, command: str, skipped: list[str]) -> str:
    """The results file: the command, the conditions, one table, the notes."""
    env = record["env"]
    lines = [
        "# Compression benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"{env['cpu']} ({env['cpu_count']} CPUs), torch {env['torch']}, {env['runtime']}, batch {env['batch']}, "
        f"input {tuple(env['input_shape'])}, {env['threads']} threads, median of {env['repeats']} interleaved rounds "
        f"after {env['warmup']} warm-up rounds, {env['date']}. AKD (px of the {env['image_size']} px frame) and jacobian "
        f"error against the teacher on {env['eval_frames']} held-out synthetic frames; speed-up = teacher median / row "
        "median from the same interleaved run. MB = 10^6 bytes of the serialized state dict.",
        "",
        "| variant | method | speedup | latency_ms (p10-p90) | akd_px | jacobian_error | params | macs | size_mb |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in record["rows"]:
        latency = (
            "-"
            if row["latency_ms"] is None
            else f"{cell(row['latency_ms'])} ({cell(row['latency_p10'])}-{cell(row['latency_p90'])})"
        )
        macs = "-" if row["macs"] is None else cell(row["macs"]) + (" (int8)" if row["macs_int8"] else "")
        cells = [row["variant"], row["method"], cell(row["speedup"]), latency, cell(row["akd_px"]),
                 cell(row["jacobian_error"]), cell(row["params"]), macs, cell(row["size_mb"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {note}" for note in record["notes"]] + [f"- skipped {item}" for item in skipped]
    if notes:
        lines += ["", *notes]
    lines += ["", "Per-module times (side by side) and per-stage reports: the JSON file next to this one."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="reduced random model, 64 px, 4 frames, 1 warm-up and 2 timed rounds"
    )
    parser.add_argument("--weights", default="default", choices=("default", "random"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=None, help="default 10 (1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="default 30 (2 with --quick)")
    parser.add_argument("--frames", type=int, default=None, help="held-out frames; default 32 (4 with --quick)")
    parser.add_argument("--calib", type=int, default=None, help="calibration frames; default 32 (4 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="comma-separated variant names to keep")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    quick = args.quick
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 10)
    args.repeats = args.repeats if args.repeats is not None else (2 if quick else 30)
    args.frames = args.frames if args.frames is not None else (4 if quick else 32)
    args.calib = args.calib if args.calib is not None else (4 if quick else 32)
    args.size = 64 if quick else 256
    if quick:
        args.weights = "random"
    return args


def run(argv: list[str]) -> Path:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/compress_benchmark.py", *argv])
    stem = "compress-quick" if args.quick else "compress"  # a smoke test never overwrites real results
    md_path, json_path = args.out_dir / f"{stem}.md", args.out_dir / f"{stem}.json"
    check_writable(md_path), check_writable(json_path)
    chosen = specs(args.quick)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {s.name for s in chosen})
        if unknown:
            raise CompressbenchError(
                f"--only: unknown variant(s) {', '.join(unknown)}; known: {', '.join(s.name for s in chosen)}"
            )
        chosen = [s for s in chosen if s.name in wanted]
    for spec in chosen:  # every option is checked before anything is built
        stage_options(
            list(spec.chain), {**spec.common, **({"calib": 1} if "quantize" in spec.chain else {})}, spec.per_stage
        )
    skipped = [f"{s.name}: {why}" for s in chosen if (why := unavailable(s))]
    chosen = [s for s in chosen if not unavailable(s)]

    torch.manual_seed(args.seed)
    config = QUICK_CONFIG if args.quick else None
    teacher = load_model("teacher", config=config, weights=args.weights)
    base = {"model": "teacher", "config": (config or DetectorConfig()).to_dict()}
    context = CompressionContext(
        calibration_frames=lambda n: frames_for("synthetic", n, split="train", seed=args.seed, size=args.size).images,
        input_shape=(1, 3, args.size, args.size),
        seed=args.seed,
    )
    variants = []
    for spec in chosen:
        torch.manual_seed(args.seed)
        variants.append(build(teacher, spec, context, args.calib, base))
    eval_frames = frames_for("synthetic", args.frames, split="test", seed=args.seed, size=args.size)
    record = compare(
        teacher, variants, eval_frames, threads=args.threads, warmup=args.warmup, repeats=args.repeats, batch=args.batch
    )
    record["benchmark"] = {
        "command": command,
        "weights": args.weights,
        "variants": [{"name": s.name, "chain": list(s.chain), "options": s.common, "set": s.per_stage} for s in chosen],
        "skipped": skipped,
    }
    write_atomic(json_path, render_json(record))
    write_atomic(md_path, markdown(record, command, skipped))
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return md_path


def main() -> None:
    try:
        run(sys.argv[1:])
    except CompressbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
