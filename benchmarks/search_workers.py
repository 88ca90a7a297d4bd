"""Issue 27 part 6: does a search train in clearly less wall time on two Ray workers than on one,
for the same budget in steps, and give the same front?

The same search runs once per ``--workers`` entry (default ``1,2``), one after the other and
nothing else at the same time, each from an empty cache of its own, on the default teacher. Steps
bound it, not seconds: fixed ``--min-steps``/``--max-steps`` and a budget far larger than they
take (``--budget``, default 100h). Every run's trainings use the same torch thread count
(``--train-threads``, default: this machine's CPUs / the most workers asked for), since the thread
count changes the numbers a training computes (1 vs 2 threads: weights differ by ~3e-3 after 3
steps). One worker trains in this process; more train as Ray actors on a local Ray.

With ``--fixed-probe`` (the default) the later runs reuse the first run's latency probe and
per-block times, so that every run makes the same decisions (which candidates train, the
latency-aware prune plans); the training is what is compared. Each run's final timing is its own
measurement, so its front is reported as measured and also recomputed from the first run's
latencies: trained weights, validation AKDs and held-out AKDs must be identical, and a front that
differs only in the measured latencies says so.

Writes ``benchmarks/results/OUT/search-workers.json``: each run's wall time (the whole search, and
its training as the search charged it: a parallel round's wall-clock time, Ray's start included;
``workers_info.start_s`` says how much of it was starting Ray and its workers), the workers' set-up,
front, winner and per-variant numbers, and whether the runs' trained heads are bit-identical.
``--quick`` runs a reduced random teacher with a few steps, to test the script, not to measure.

    .venv/bin/python benchmarks/search_workers.py --out amd-epyc-avx512/search-workers \\
        [--workers 1,2] [--min-steps 100] [--max-steps 300] [--max-akd 1.0] [--train-threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from compressbench import variant_search as search_module
from compressbench.files import render_json, write_atomic
from compressbench.metrics import fastest_within
from compressbench.models import DetectorConfig, build_teacher
from compressbench.provenance import load_model, provenance_of
from compressbench.search_workers import local_cpus
from compressbench.variant_search import SearchOptions, pareto_front, search

RESULTS = Path(__file__).parent / "results"
QUICK_RECOVER = {"pool": 16, "batch": 4, "val_frames": 8, "val_every": 2}


def frozen(name: str, store: dict, fixed: bool):
    """Wrap ``_Search.latencies`` or ``measure_block_times``: the first run's answers, replayed later
    (each run still measures, so that every run spends the same time on it)."""
    owner = search_module._Search if name == "latencies" else search_module
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        answer = original(*args, **kwargs)
        if not (fixed and name in store):
            store[name] = answer
        return store[name]

    setattr(owner, name, wrapper)


def heads(folder: Path) -> dict[str, dict]:
    return {p.stem: torch.load(p, weights_only=True)["state_dict"] for p in sorted(folder.glob("*.pt"))}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x.keys() == b[k].keys() and all(torch.equal(x[n], b[k][n]) for n in x) for k, x in a.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder under benchmarks/results/ for search-workers.json")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts, run in this order")
    parser.add_argument("--min-steps", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--max-akd", type=float, default=1.0)
    parser.add_argument("--budget", default="100h", help="far more than the steps take: steps bound the search")
    parser.add_argument("--methods", default=",".join(search_module.DEFAULT_METHODS))
    parser.add_argument("--train-threads", type=int, default=None, help="default: CPUs / the most workers")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the timing (default: torch's)")
    parser.add_argument("--runtime", default="torch")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-fixed-probe", dest="fixed_probe", action="store_false",
                        help="let every run probe latencies (and plan prunes) on its own")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a reduced random teacher and a few steps (tests the script)")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    threads = args.train_threads or max(1, local_cpus() // max(counts))
    out = RESULTS / args.out / "search-workers.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    if args.quick:
        torch.manual_seed(0)
        teacher = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)).eval()
        start = provenance_of(teacher)
        sizes = dict(size=64, frames=4, val_frames=8, recover=QUICK_RECOVER, min_steps=2, max_steps=4, repeats=2, warmup=0)
    else:
        teacher = load_model("teacher").eval()
        start = provenance_of("teacher", teacher)
        sizes = dict(min_steps=args.min_steps, max_steps=args.max_steps, repeats=args.repeats)

    store: dict = {}
    frozen("latencies", store, args.fixed_probe)
    frozen("measure_block_times", store, args.fixed_probe)
    seen: dict = {}
    original_run = search_module._Search.run

    def run(self, candidates):
        try:
            return original_run(self, candidates)
        finally:
            seen["workers_info"] = dict(self.workers_info)

    search_module._Search.run = run

    root = Path(tempfile.mkdtemp(prefix="search-workers-"))
    runs, caches = [], []
    try:
        for count in counts:
            cache = root / f"workers-{count}"
            options = SearchOptions(
                max_akd=args.max_akd, budget=args.budget, methods=tuple(m for m in args.methods.split(",") if m),
                cache=cache, progress=False, runtime=args.runtime, precision=args.precision, fronts_on=(),
                threads=args.threads, workers=count, train_threads=threads, **sizes,
            )  # fmt: skip
            print(f"search with {count} worker(s), {threads} training thread(s) each ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            record, _ = search(teacher, options, start=start)
            wall = time.perf_counter() - began
            caches.append(cache)
            rows = record["rows"]
            runs.append({
                "workers": count, "reference": rows[0]["variant"], "wall_s": wall, "spent_s": record["spent_s"], "budget_split": record.get("budget_split"),
                "workers_info": seen.get("workers_info"), "trained": record["trained"], "front": record["front"],
                "winner": record["winner"],
                "rows": {r["variant"]: {k: r.get(k) for k in ("latency_ms", "akd_px", "val_akd_px", "recover_steps")} for r in rows},
                "log": record["log"],
            })  # fmt: skip
            print(f"  {wall:.1f} s wall, training charged {record['spent_s']:.1f} s; front {record['front']}", file=sys.stderr)
        first = runs[0]

        def numbers(run: dict) -> dict:
            return {v: (r["akd_px"], r["val_akd_px"], r["recover_steps"]) for v, r in run["rows"].items() if v != run["reference"]}

        for other in runs:
            # this run's held-out AKDs with the first run's latencies: does the front differ by timing only?
            replayed = [{"variant": v, "latency_ms": first["rows"][v]["latency_ms"], "akd_px": row["akd_px"]}
                        for v, row in other["rows"].items() if v in first["rows"]]  # fmt: skip
            replayed.sort(key=lambda r: r["variant"] != other["reference"])  # the reference row first
            other["front_with_first_latencies"] = [r["variant"] for r in pareto_front(replayed[1:])]
            winner = fastest_within(replayed, args.max_akd)
            other["winner_with_first_latencies"] = winner["variant"] if winner else None
            other["same_training_as_first"] = numbers(other) == numbers(first)
        reference = heads(caches[0])
        document = {
            "what": "the same search (steps-bound) with each worker count, one after the other",
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": local_cpus()},
            "torch": torch.__version__, "quick": args.quick, "fixed_probe": args.fixed_probe,
            "train_threads": threads, "min_steps": sizes["min_steps"], "max_steps": sizes["max_steps"],
            "max_akd": args.max_akd, "budget": args.budget, "runtime": args.runtime, "precision": args.precision,
            "runs": runs,
            "heads_bit_identical": {str(run["workers"]): identical(reference, heads(cache)) for run, cache in zip(runs, caches)},
            "speedup_vs_first": {str(run["workers"]): first["wall_s"] / run["wall_s"] for run in runs},
            "training_speedup_vs_first": {
                str(run["workers"]): first["spent_s"] / run["spent_s"] if run["spent_s"] else None for run in runs
            },
            "same_front": all(run["front"] == first["front"] for run in runs),
            "same_front_with_first_latencies": all(run["front_with_first_latencies"] == first["front"] for run in runs),
        }  # fmt: skip
        write_atomic(out, render_json(document))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({k: document[k] for k in ("speedup_vs_first", "heads_bit_identical", "same_front", "same_front_with_first_latencies")}))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
