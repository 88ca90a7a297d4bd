"""The fixed ends of a pruned detector: what a learned stem and smaller heads buy, and what they cost.

Two measurements of the ``stem`` and ``heads`` methods after pruning, written to one JSON:

1. latency: a pruned skeleton (default: the search's ``prune-lat-0.8`` plan, folded by ``exact``)
   untrained, alone and with ``stem``, ``heads`` (kernels 5 and 3) and both, in one interleaved run
   with the teacher on the given runtime (latency does not depend on the weights);
2. recovery: ``prune,recover,exact`` at ``--ratio`` against the same chain with ``stem`` and/or
   ``heads`` inserted before ``recover``, each trained the same number of steps, AKD on held-out
   frames with its 95% interval, and each chain's seconds (run nothing else beside it).

Run it on a quiet machine; the latency under the AVX2 cap, the recovery (which the ISA does not
change, only its seconds) without it:

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/ends_probe.py --skip-recovery \\
        --output benchmarks/results/amd-epyc-avx512-as-avx2/ends-latency.json
    python benchmarks/ends_probe.py --skip-latency --steps 800 --output benchmarks/results/amd-epyc-avx512/ends-recovery.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import compressbench as cb
from compressbench.api import compare
from compressbench.progress import progress_bar

# the search's prune-lat-0.8 plan under --max-isa avx2 (search-20m-avx2-cap-bet.json's "plans")
PLAN_08 = (
    "encoder.down_blocks.0:0.75,encoder.down_blocks.1:0.8,encoder.down_blocks.2:0.7,encoder.down_blocks.3:0.85,"
    "encoder.down_blocks.4:0.65,decoder.up_blocks.0:0.75,decoder.up_blocks.1:0.75,decoder.up_blocks.2:0.8,"
    "decoder.up_blocks.3:0.75,decoder.up_blocks.4:0.85"
)
LATENCY_CHAINS = {  # name -> (methods between prune and exact, per-stage options)
    "pruned": ([], {}),
    "+stem": (["stem"], {}),
    "+heads5": (["heads"], {"heads": {"kernel": 5}}),
    "+heads3": (["heads"], {"heads": {"kernel": 3}}),
    "+stem+heads5": (["stem", "heads"], {"heads": {"kernel": 5}}),
    "+stem+heads3": (["stem", "heads"], {"heads": {"kernel": 3}}),
}
RECOVERY_CHAINS = {
    "prune": ([], {}),
    "prune+stem": (["stem"], {}),
    "prune+heads5": (["heads"], {"heads": {"kernel": 5}}),
    "prune+heads3": (["heads"], {"heads": {"kernel": 3}}),
}


def latency(runtime: str, repeats: int) -> dict:
    teacher = cb.load_model("teacher")
    variants = {}
    for name, (ends, options) in LATENCY_CHAINS.items():
        chain = ["prune", *ends, "exact"]
        stage = {"prune": {"ratio": 0.8, "ratios": PLAN_08}, **options}
        variants[name] = cb.compress(teacher, chain, stage=stage, repeats=2, frames=4).final.module
    record = compare(teacher, variants, runtime=runtime, threads=2, repeats=repeats, frames=8, show_progress=True)
    return {r.variant: {"latency_ms": r.latency_ms, "p10": r.latency.p10, "p90": r.latency.p90, "speedup": r.speedup,
                        "macs": r.macs, "params": r.params} for r in record.rows}  # fmt: skip


def recovery(ratio: float, steps: int, frames: int) -> dict:
    out = {}
    with progress_bar(f"recovering {len(RECOVERY_CHAINS)} chains", len(RECOVERY_CHAINS)) as advance:
        for name, (ends, options) in RECOVERY_CHAINS.items():
            started = time.perf_counter()
            chain = ["prune", *ends, "recover", "exact"]
            run = cb.compress("teacher", chain, frames=frames, repeats=3,
                              stage={"prune": {"ratio": ratio}, "recover": {"steps": steps}, **options})  # fmt: skip
            row = run.record.rows[-1]
            out[name] = {"chain": ",".join(chain), "options": options, "steps": steps, "akd_px": row.akd_px,
                         "akd_px_ci95": row.akd_px_ci95, "jacobian_error": row.jacobian_error, "macs": row.macs,
                         "seconds": time.perf_counter() - started}  # fmt: skip
            advance()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="openvino:int8")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--ratio", type=float, default=0.7)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--frames", type=int, default=128, help="held-out frames for the AKD")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-recovery", action="store_true")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    result = {"machine": cb.machine(peaks=False), "runtime": args.runtime}
    if not args.skip_latency:
        result["latency"] = latency(args.runtime, args.repeats)
    if not args.skip_recovery:
        result["recovery"] = recovery(args.ratio, args.steps, args.frames)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    for part in ("latency", "recovery"):
        for name, row in result.get(part, {}).items():
            print(part, name, {k: v for k, v in row.items() if k not in ("options",)})


if __name__ == "__main__":
    main()
