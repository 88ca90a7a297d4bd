"""How well ``--max-isa avx2`` stands in for an AVX2-only CPU: OpenVINO int8 over eager fp32,
with and without the cap, on the same machine.

oneDNN and ATen read the cap once per process, so the parent runs child processes, free and capped
alternating, so the machine's drift over minutes reaches both alike. Each child times, interleaved
(turns of 1 untimed + 4 timed calls, idle threads waited out after each: the design of ``compare``
and ``search``), the eager fp32 teacher and, on OpenVINO int8, the teacher, ``exact`` and the
structures prune 0.5 and 0.7 + ``exact`` (random weights after pruning: latency does not depend on
them), and reads from its run records which kernels the convolutions ran on and which ran above the
cap. The figures a user measured on a real AVX2-only AMD EPYC (issue 27: 2.9x, 9.1x, 11.9x) are
printed beside them as the check.

    python benchmarks/isa_cap_probe.py --pairs 2 --rounds 30 --out benchmarks/results/<cpu>/isa-cap-avx2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from compressbench.profiling.machine import isa_cap_environment

BURST, WARMUP, THREADS = 4, 5, 2
STRUCTURES = {"teacher": [], "exact": ["exact"], "prune-0.5+exact": ["prune", "exact"], "prune-0.7+exact": ["prune", "exact"]}
RATIOS = {"prune-0.5+exact": 0.5, "prune-0.7+exact": 0.7}
REAL_AVX2 = {"teacher": 2.9, "prune-0.5+exact": 9.1, "prune-0.7+exact": 11.9}  # issue 27, measured outside the tool
EAGER = "eager fp32 teacher"


def child(rounds: int) -> dict:
    import torch
    from probe_common import probe_setup

    from compressbench.profiling.machine import this_machine
    from compressbench.profiling.timing import time_once_ms, torch_threads, wait_until_idle
    from compressbench.runtimes import prepare

    setup = probe_setup()
    teacher, calibration, batch = setup.teacher, setup.calibration, setup.batch
    models = {name: setup.variant(chain, **({"ratio": RATIOS[name]} if name in RATIOS else {})) for name, chain in STRUCTURES.items()}
    with torch_threads(THREADS) as threads, torch.inference_mode():
        runners = {EAGER: prepare("torch", teacher, batch, threads)}
        runners |= {name: prepare("openvino", m, batch, threads, "int8", calibration, "percentile") for name, m in models.items()}
        for _ in range(WARMUP):
            for fn in runners.values():
                fn()
        samples = {name: [] for name in runners}
        names = list(runners)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runners[name]()  # the untimed call that pays for the switch
                samples[name] += [time_once_ms(runners[name]) for _ in range(BURST)]
                wait_until_idle()
    medians = {name: statistics.median(v) for name, v in samples.items()}
    teacher_record = runners["teacher"].record
    return {
        "isa_cap": this_machine().isa_cap or "none",
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "medians_ms": medians,
        "speedup": {name: medians[EAGER] / ms for name, ms in medians.items() if name != EAGER},
        "teacher_kernels": teacher_record.kernels,
        "teacher_kernels_above_cap": teacher_record.kernels_above_cap,
    }


def summarise(children: list[dict], command: str, env: dict) -> str:
    lines = [
        "# `--max-isa avx2` against a real AVX2-only CPU",
        "",
        f"Command: `{command}`",
        "",
        f"{env['machine']['label']}, torch {env['torch']}, {THREADS} threads, batch 1, 256 px, {env['date']}. Child processes "
        f"alternate free and capped (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2); each interleaves the runners (turns of "
        f"1 untimed + {BURST} timed calls, idle threads waited out). Speed-up = eager fp32 teacher median / OpenVINO int8 median "
        "in the same child. Pruned structures carry random weights (latency does not depend on them).",
        "",
        "| child | cap | eager ATen | " + " | ".join(f"OV int8 {n}" for n in STRUCTURES) + " |",
        "|--:|:--|:--|" + "--:|" * len(STRUCTURES),
    ]
    for i, c in enumerate(children, 1):
        lines.append(f"| {i} | {c['isa_cap']} | {c['torch_cpu_capability']} | " + " | ".join(f"{c['speedup'][n]:.2f}x" for n in STRUCTURES) + " |")
    by_cap: dict[str, dict[str, float]] = {}
    for cap in dict.fromkeys(c["isa_cap"] for c in children):
        mine = [c for c in children if c["isa_cap"] == cap]
        by_cap[cap] = {n: statistics.median(c["speedup"][n] for c in mine) for n in STRUCTURES}
    lines += ["", "Medians of the children, beside the real AVX2-only AMD EPYC (issue 27, 2 threads, one interleaved run):", "",
              "| OpenVINO int8 of | " + " | ".join(by_cap) + " | real AVX2 EPYC | capped / real |", "|:--|" + "--:|" * (len(by_cap) + 2)]
    for n in STRUCTURES:
        real = REAL_AVX2.get(n)
        capped = by_cap.get("AVX2", {}).get(n)
        ratio = f"{capped / real:.2f}" if real and capped else "-"
        lines.append(f"| {n} | " + " | ".join(f"{v[n]:.2f}x" for v in by_cap.values()) + f" | {f'{real}x' if real else '-'} | {ratio} |")
    for c in children[:2]:
        lines += ["", f"Teacher's convolution kernels ({c['isa_cap']}): {', '.join(c['teacher_kernels'])}; "
                      f"above the cap: {', '.join(c['teacher_kernels_above_cap']) or 'none'}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="child processes per setting (alternating)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per child")
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

    free = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    settings = [env for _ in range(args.pairs) for env in (free, {**free, **isa_cap_environment("avx2")})]
    children = []
    with progress_bar("child processes", len(settings)) as advance:
        for env in settings:
            done = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds)], env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            children.append(json.loads(done.stdout.strip().splitlines()[-1]))
            advance()
    command = "python benchmarks/isa_cap_probe.py " + " ".join(sys.argv[1:])
    text = summarise(children, command, environment(THREADS))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"format": 1, "command": command, "children": children}, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
