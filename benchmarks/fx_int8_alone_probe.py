"""Teacher FX int8 alone (blocks of 40 calls) against interleaved with torch bf16 and OpenVINO fp32
(turns of 1 untimed + 4 timed), with minor page faults per timed call; ``mallopt`` as first argument
first raises glibc's trim and mmap thresholds. Why the runtimes benchmark saw the FX int8 teacher
10-15% slower alone than interleaved: run it twice and compare the two processes.

    python benchmarks/fx_int8_alone_probe.py [mallopt]
"""

from __future__ import annotations

import ctypes
import resource
import statistics
import sys

import torch

from compressbench.data import frames_for
from compressbench.profiling.timing import time_once_ms, torch_threads
from compressbench.provenance import load_model
from compressbench.runtimes import prepare

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(fn, samples: list[float], faulted: list[int]) -> None:
    before = faults()
    samples.append(time_once_ms(fn))
    faulted.append(faults() - before)


def main(argv: list[str]) -> None:
    if argv[:1] == ["mallopt"]:
        libc = ctypes.CDLL("libc.so.6")
        print("mallopt:", libc.mallopt(M_TRIM_THRESHOLD, 1 << 30), libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))
    teacher = load_model("teacher").eval()
    calibration = frames_for("synthetic", 64, split="train", seed=0, size=256).images
    batch = frames_for("synthetic", 4, split="test", seed=0, size=256).images[:1].contiguous()
    with torch_threads(2) as threads, torch.inference_mode():
        int8 = prepare("torch", teacher, batch, threads, "int8", calibration)
        others = [prepare("torch", teacher, batch, threads, "bf16", None), prepare("openvino", teacher, batch, threads, "fp32", None)]
        for fn in (int8, *others):
            for _ in range(5):
                fn()

        def alone(blocks: int = 4, block: int = 40) -> tuple[float, float]:
            samples, faulted = [], []
            for _ in range(blocks):
                int8()
                for _ in range(block):
                    timed(int8, samples, faulted)
                for fn in others:
                    fn()
            return statistics.median(samples), statistics.mean(faulted)

        def interleaved(turns: int = 40) -> tuple[float, float]:
            samples, faulted = [], []
            for _ in range(turns):
                for fn in others:
                    fn()
                    fn()
                int8()
                for _ in range(4):
                    timed(int8, samples, faulted)
            return statistics.median(samples), statistics.mean(faulted)

        for rep in range(2):
            (a_ms, a_faults), (i_ms, i_faults) = alone(), interleaved()
            print(
                f"rep {rep}: alone {a_ms:.3f} ms ({a_faults:.0f} faults/call)  interleaved {i_ms:.3f} ms "
                f"({i_faults:.0f} faults/call)  diff {100 * (i_ms - a_ms) / a_ms:+.1f}%"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
