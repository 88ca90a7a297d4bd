"""Which OMP_WAIT_POLICY gives honest ratios against eager PyTorch: what each policy costs eager,
and what eager's spinning workers cost the runner timed after it.

libgomp reads the policy once, when torch is imported, so one process cannot time both. The
parent runs child processes, the policies alternating (unset, PASSIVE, unset, ...), so the machine's
drift over minutes reaches both alike. Each child times, interleaved with turns of one untimed and
4 timed calls (the design of ``compare`` and ``search``): the eager fp32 teacher and the teacher
and ``exact`` on OpenVINO int8. Every round is run twice, once as is and once "settled": after every
turn the child sleeps until the process burns under 5% of a core over 5 ms (at most 50 ms), so no
idle thread spins into the next turn (the library's ``wait_until_idle``). Within a child, plain against settled says what spinning
costs the next runner; across children, eager over the OpenVINO int8 teacher (a ruler the policy
cannot touch: its threads are oneTBB's) says what the policy costs eager itself.

    python benchmarks/omp_policy_probe.py --pairs 3 --rounds 48 --out benchmarks/results/<cpu>/omp-policy
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compressbench.profiling.timing import wait_until_idle

BURST, WARMUP, THREADS = 4, 5, 2
RUNNERS = ("eager fp32 teacher", "OpenVINO int8 teacher", "OpenVINO int8 exact")


def idle_spin(fn, repeats: int = 15) -> float:
    """Cores of CPU time burnt in the 10 ms after a call while the caller sleeps (median)."""
    spins = []
    for _ in range(repeats):
        fn()
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(0.010)
        spins.append((time.process_time() - cpu) / (time.perf_counter() - wall))
        wait_until_idle()
    return statistics.median(spins)


def child(rounds: int) -> dict:
    import torch
    from probe_common import probe_setup

    from compressbench.profiling.timing import time_once_ms, torch_threads
    from compressbench.runtimes import prepare

    setup = probe_setup()
    teacher, calibration, batch = setup.teacher, setup.calibration, setup.batch
    exact = setup.variant(["exact"])
    with torch_threads(THREADS) as threads, torch.inference_mode():
        fns = {
            RUNNERS[0]: prepare("torch", teacher, batch, threads),
            RUNNERS[1]: prepare("openvino", teacher, batch, threads, "int8", calibration, "percentile"),
            RUNNERS[2]: prepare("openvino", exact, batch, threads, "int8", calibration, "percentile"),
        }
        for _ in range(WARMUP):
            for fn in fns.values():
                fn()
        samples = {mode: {name: [] for name in fns} for mode in ("plain", "settled")}
        waits = []
        names = list(fns)
        for r in range(rounds):
            for mode in ("plain", "settled") if r % 2 == 0 else ("settled", "plain"):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    fns[name]()  # the untimed call that pays for the switch
                    samples[mode][name] += [time_once_ms(fns[name]) for _ in range(BURST)]
                    if mode == "settled":
                        waits.append(wait_until_idle())
        spin = {name: idle_spin(fn) for name, fn in fns.items()}
    return {
        "policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "medians_ms": {mode: {n: statistics.median(v) for n, v in d.items()} for mode, d in samples.items()},
        "settle_ms": {"median": 1e3 * statistics.median(waits), "max": 1e3 * max(waits)},
        "idle_spin_cores": spin,
    }


def summarise(children: list[dict], command: str, env: dict) -> str:
    lines = [
        "# What OMP_WAIT_POLICY does to ratios against eager PyTorch",
        "",
        f"Command: `{command}`",
        "",
        f"{env['cpu']} ({env['cpu_count']} CPUs), torch {env['torch']}, {THREADS} threads, batch 1, 256 px, {env['date']}. "
        f"Child processes alternate the policy; each interleaves the runners (turns of 1 untimed + {BURST} timed calls) "
        "in rounds run twice, as is (plain) and settled (after every turn, sleep until the process burns under 5% of a "
        "core; at most 50 ms). Speed-up = eager fp32 teacher median / runner median in the same child and mode.",
        "",
        "| child | policy | eager fp32 teacher ms | OV int8 teacher: speed-up (plain / settled) | OV int8 exact: speed-up (plain / settled) "
        "| OV int8 teacher settled vs plain | eager idle spin (cores) | settle wait ms (median, max) |",
        "|--:|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for i, c in enumerate(children, 1):
        plain, settled = c["medians_ms"]["plain"], c["medians_ms"]["settled"]
        eager = plain[RUNNERS[0]]
        lines.append(
            f"| {i} | {c['policy']} | {eager:.3f} | {eager / plain[RUNNERS[1]]:.2f}x / {settled[RUNNERS[0]] / settled[RUNNERS[1]]:.2f}x "
            f"| {eager / plain[RUNNERS[2]]:.2f}x / {settled[RUNNERS[0]] / settled[RUNNERS[2]]:.2f}x "
            f"| {100 * (settled[RUNNERS[1]] / plain[RUNNERS[1]] - 1):+.1f}% | {c['idle_spin_cores'][RUNNERS[0]]:.2f} "
            f"| {c['settle_ms']['median']:.1f}, {c['settle_ms']['max']:.1f} |"
        )
    by_policy: dict[str, list[float]] = {}
    for c in children:
        plain = c["medians_ms"]["plain"]
        by_policy.setdefault(c["policy"], []).append(plain[RUNNERS[0]] / plain[RUNNERS[1]])
    lines += ["", "Eager fp32 teacher over the OpenVINO int8 teacher, median of the children per policy (plain rounds):", ""]
    lines += [f"- {policy}: {statistics.median(values):.2f}x ({', '.join(f'{v:.2f}' for v in values)})" for policy, values in by_policy.items()]
    if {"unset", "PASSIVE"} <= by_policy.keys():
        cost = statistics.median(by_policy["PASSIVE"]) / statistics.median(by_policy["unset"]) - 1
        lines += ["", f"PASSIVE makes eager fp32 {100 * cost:+.1f}% slower against the same ruler, so every speed-up over eager reads that much higher."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="child processes per policy (alternating)")
    parser.add_argument("--rounds", type=int, default=48, help="interleaved rounds per child, each run plain and settled")
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pairs <= 0 or args.rounds <= 0:
        parser.error("--pairs and --rounds must be positive")
    if args.child:
        print(json.dumps(child(args.rounds)))
        return
    from compressbench.profiling.environment import environment
    from compressbench.progress import progress_bar

    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policies = [p for _ in range(args.pairs) for p in ("unset", "PASSIVE")]
    children = []
    with progress_bar("child processes", len(policies)) as advance:
        for policy in policies:
            env = base if policy == "unset" else {**base, "OMP_WAIT_POLICY": policy}
            done = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)], env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            children.append(json.loads(done.stdout.strip().splitlines()[-1]))
            advance()
    command = "python benchmarks/omp_policy_probe.py " + " ".join(sys.argv[1:])
    text = summarise(children, command, environment(THREADS))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"format": 1, "command": command, "children": children}, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
