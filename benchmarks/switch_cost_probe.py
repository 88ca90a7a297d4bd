"""What a switch costs ONNX Runtime int8: its latency by call index after another runner's calls.

The paired runtimes benchmark found ONNX Runtime int8 the one runner slower interleaved than alone
by over 5% (in two of three runs). This times `exact` on ONNX Runtime int8 for 20 consecutive calls
right after 5 calls of OpenVINO int8, after 5 calls of eager bf16, and after itself, 40 times each,
and prints each call index's median over the last ten indices' median: how many calls after a
switch pay for it, i.e. how many untimed calls a turn needs. The recorded run
(switch-cost-ort-int8.txt) used OMP_WAIT_POLICY=PASSIVE, as the benchmark then did:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/switch_cost_probe.py
"""

from __future__ import annotations

import statistics

import torch
from probe_common import probe_setup

from compressbench.profiling.environment import environment
from compressbench.profiling.timing import time_once_ms, torch_threads
from compressbench.runtimes import prepare
from compressbench.runtimes.base import openmp_wait_policy

CALLS_AFTER_SWITCH, OTHER_CALLS, REPEATS, THREADS = 20, 5, 40, 2


def main() -> None:
    setup = probe_setup()
    exact, calibration, batch = setup.variant(["exact"]), setup.calibration, setup.batch
    with torch_threads(THREADS) as threads:
        probed = prepare("onnxruntime", exact, batch, threads, "int8", calibration, "percentile")
        before = {
            "after OpenVINO int8": prepare("openvino", exact, batch, threads, "int8", calibration, "percentile"),
            "after eager bf16": prepare("torch", exact, batch, threads, "bf16", calibration, None),
            "after itself": None,
        }
        samples = {name: [[] for _ in range(CALLS_AFTER_SWITCH)] for name in before}
        with torch.inference_mode():
            for runner in (probed, *(r for r in before.values() if r is not None)):
                for _ in range(10):
                    runner()
            for _ in range(REPEATS):
                for name, other in before.items():
                    for _ in range(OTHER_CALLS if other is not None else 0):
                        other()
                    for index in range(CALLS_AFTER_SWITCH):
                        samples[name][index].append(time_once_ms(probed))
        env = environment(threads)
    print(f"{env['cpu']}, {threads} threads, OMP_WAIT_POLICY {openmp_wait_policy()}, {env['date']}")
    print(f"`exact` on ONNX Runtime int8, call 1..{CALLS_AFTER_SWITCH} after a switch, median of {REPEATS} / baseline")
    for name, per_index in samples.items():
        medians = [statistics.median(values) for values in per_index]
        baseline = statistics.median(medians[CALLS_AFTER_SWITCH // 2 :])
        print(f"{name:>20}: " + " ".join(f"{m / baseline:.3f}" for m in medians) + f"  (baseline {baseline:.3f} ms)")


if __name__ == "__main__":
    main()
