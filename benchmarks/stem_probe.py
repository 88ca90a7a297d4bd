"""What the input stage costs alone: FOMM's blur, exact's banded blur and learned stems, interleaved.

Times the detector's ``down`` module by itself (a 1x3x256x256 frame to the 3x64x64 map) on torch
eager and on OpenVINO fp32, every candidate once per round, and prints the median with p10/p90 and
the blur's median over each. The whole-detector comparison (where int8 matters) is
``compressbench compress --method exact,stem --runtime openvino --precision int8``; see
docs/compressing.md. Run it on a quiet machine, one thread:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/stem_probe.py --runtime torch --repeats 200
    OMP_WAIT_POLICY=PASSIVE python benchmarks/stem_probe.py --runtime openvino --repeats 200
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from compressbench.compression import CompressionContext, apply_chain, stage_options
from compressbench.provenance import load_model
from compressbench.runtimes import prepare

CANDIDATES = {  # name -> (chain, per-stage options)
    "blur": ([], []),
    "exact": (["exact"], [{"fold_bn": False}]),
    "stem-k4": (["stem"], [{"kernel": 4}]),
    "stem-k5": (["stem"], [{"kernel": 5}]),
    "stem-k5-dw": (["stem"], [{"kernel": 5, "depthwise": True}]),
    "stem-k8": (["stem"], [{"kernel": 8}]),
    "stem-k9": (["stem"], [{"kernel": 9}]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="torch", choices=("torch", "openvino", "onnxruntime"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher = load_model("teacher").eval()
    context = CompressionContext(show_progress=False)
    frame = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    runners = {}
    for name, (chain, options) in CANDIDATES.items():
        model = (
            apply_chain(teacher, chain, stage_options(chain, {}, dict(zip(chain, options))), context)[-1][0]
            if chain
            else teacher
        )
        runners[name] = prepare(args.runtime, model.down.eval(), frame, args.threads, "fp32")
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.warmup):
        for runner in runners.values():
            runner()
    for _ in range(args.repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner()
            times[name].append((time.perf_counter() - start) * 1e3)
    blur = statistics.median(times["blur"])
    print(f"input stage alone, {args.runtime} fp32, {args.threads} thread(s), {args.repeats} interleaved rounds")
    for name, samples in times.items():
        deciles = statistics.quantiles(samples, n=10)
        median = statistics.median(samples)
        print(
            f"{name:11s} median {median:7.3f} ms  p10 {deciles[0]:7.3f}  p90 {deciles[-1]:7.3f}  blur/this {blur / median:5.2f}"
        )


if __name__ == "__main__":
    main()
