"""Is a measurement on an oversubscribed machine flagged every time? A background-load experiment.

For each background load (0, 0.5, 1, 1.3 and 2 cores kept busy by other processes, each a
duty-cycled spin loop: busy for that fraction of every 10 ms), `compressbench profile` runs on the
default teacher COUNT times at 2 threads; the table counts how often the record's measurement
health flagged the run, what it said, and how far the end-to-end median moved from the quiet one.
Goal: every loaded run that the numbers show as distorted is flagged; no quiet run is.

    .venv/bin/python benchmarks/health_experiment.py [--count 5] [--quick]

Writes benchmarks/results/health_experiment.md and .json. Run it on an otherwise idle machine: its
own background processes are the only load it means to measure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

from compressbench.profiling import environment, profile
from compressbench.profiling.machine import this_machine
from compressbench.provenance import load_model

OUT = Path(__file__).parent / "results"
LOADS = (0.0, 0.5, 1.0, 1.3, 2.0)
PERIOD_S = 0.01
THREADS = 2


def spin(duty: float, stop) -> None:
    """Keep one core busy for ``duty`` of every 10 ms until ``stop`` is set."""
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < duty * PERIOD_S:
            pass
        if duty < 1.0:
            time.sleep((1.0 - duty) * PERIOD_S)


class BackgroundLoad:
    """``cores`` of busy work in other processes: whole cores, then one partial."""

    def __init__(self, cores: float) -> None:
        self.duties = [1.0] * int(cores) + ([round(cores - int(cores), 3)] if cores - int(cores) > 1e-9 else [])
        self.stop = multiprocessing.Event()
        self.workers: list[multiprocessing.Process] = []

    def __enter__(self) -> BackgroundLoad:
        self.workers = [multiprocessing.Process(target=spin, args=(d, self.stop), daemon=True) for d in self.duties]
        for worker in self.workers:
            worker.start()
        time.sleep(1.0)  # let the loops reach the scheduler before health looks
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=5)


def run(count: int, quick: bool) -> dict:
    teacher = load_model("teacher")
    size, warmup, repeats = (128, 2, 5) if quick else (256, 5, 20)
    rows = []
    for load in LOADS:
        runs = []
        with BackgroundLoad(load):
            for i in range(count):
                record = profile(teacher, (1, 3, size, size), name="teacher", warmup=warmup, repeats=repeats, threads=THREADS, show_progress=False)
                health = record.health
                runs.append({"flagged": not health["healthy"], "warnings": health["warnings"], "e2e_ms": record.latency_ms.median,
                             "busy_cores": health["checks"].get("busy_cores"), "probe_ms": health["checks"].get("probe_ms")})  # fmt: skip
                print(f"load {load}: run {i + 1}/{count}: {'flagged' if runs[-1]['flagged'] else 'ok'} {runs[-1]['e2e_ms']:.1f} ms {health['warnings']}", file=sys.stderr)
        rows.append({"load_cores": load, "runs": runs})
    quiet = statistics.median(r["e2e_ms"] for r in rows[0]["runs"])
    for row in rows:
        row["median_e2e_ms"] = statistics.median(r["e2e_ms"] for r in row["runs"])
        row["slowdown_vs_quiet"] = row["median_e2e_ms"] / quiet - 1
        row["flagged"] = sum(r["flagged"] for r in row["runs"])
    return {"count": count, "threads": THREADS, "input_size": size, "warmup": warmup, "repeats": repeats,
            "machine": this_machine(THREADS).label, "env": environment(THREADS), "rows": rows}  # fmt: skip


def markdown(result: dict, command: str) -> str:
    lines = [
        "# Measurement health under a background load",
        "",
        f"Command: `{command}`  ",
        f"Machine: {result['machine']}, {result['threads']} threads, torch {result['env']['torch']}, {result['env']['date']}",
        "",
        f"`profile` of the default teacher ({result['input_size']} px, {result['warmup']} warm-up, {result['repeats']} rounds), "
        f"{result['count']} runs per load; the load is other processes spinning on that many cores.",
        "",
        "| background load (cores) | runs flagged | median end-to-end ms | vs quiet | busy cores seen (median) | what health said (first run) |",
        "| --: | --: | --: | --: | --: | :-- |",
    ]
    for row in result["rows"]:
        busy = [r["busy_cores"] for r in row["runs"] if r["busy_cores"] is not None]
        said = "; ".join(row["runs"][0]["warnings"]) or "ok"
        lines.append(
            f"| {row['load_cores']:g} | {row['flagged']}/{len(row['runs'])} | {row['median_e2e_ms']:.1f} | {row['slowdown_vs_quiet']:+.0%} | "
            f"{statistics.median(busy) if busy else float('nan'):.2f} | {said} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="128 px, few rounds: tests the script, measures little")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.count <= 0:
        parser.error("--count must be positive")
    command = ("python benchmarks/health_experiment.py " + " ".join(sys.argv[1:])).strip()
    result = run(args.count, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "health_experiment.json").write_text(json.dumps(result, indent=1))
    (args.out / "health_experiment.md").write_text(markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
