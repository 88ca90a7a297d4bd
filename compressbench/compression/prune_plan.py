"""Per-block prune ratios chosen from each block's measured time on the runtime that ships.

A uniform ratio removes the same fraction of channels everywhere, so most removed parameters sit in
the low-resolution blocks (wide, but on small maps), where they cost little time; the
high-resolution blocks and the 7x7 heads they feed keep most of the time. On OpenVINO int8 the
hourglass's blocks are each 3-7% of the teacher's time while holding from 0.1% to 40% of its
parameters. So the plan starts from the time each block takes on the target runtime and precision
(the runtime's own per-op profiler, :func:`compressbench.runtimes.profile.profile`), models how a
block's time shrinks with the channels kept on its input and output, and removes channels where a
millisecond costs the least capacity.

The latency model of the FOMM hourglass (``n`` down blocks, ``n`` up blocks, skips concatenated):
a block's convolution scales with kept inputs x kept outputs, its other ops (BatchNorm, ReLU,
pooling, up-sampling, concatenation) with the channels they carry, the 7x7 heads with the last up
block's kept outputs plus the 3 image channels; the anti-alias input stage and the soft-argmax are
fixed. Capacity is the sum over blocks of log(kept fraction): uniform pruning keeps it highest for a
given number of removed channels, and a plan trades it for time only where time is. The model is
only a guide: the search times every planned skeleton on the runtime before it trains any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from compressbench.compression.prune import prunable_blocks
from compressbench.errors import CompressbenchError
from compressbench.runtimes.profile import profile

STEP = 0.05  # the greedy plan removes this fraction of a block's channels at a time
MAX_BLOCK_RATIO = 0.85  # no block loses more: 15% of 32 channels is still 4 + the 3 image channels
HEAD_BLOCKS = ("heatmap_keypoint", "jacobian")  # their 7x7 convolutions read the last up block


@dataclass(frozen=True)
class BlockTimes:
    """Per-block milliseconds on one runtime/precision: convolution and the block's other ops, the
    heads, and everything pruning cannot change."""

    conv_ms: dict[str, float]  # prunable block name (``encoder.down_blocks.0``) -> its convolution
    other_ms: dict[str, float]  # the block's BatchNorm/ReLU/pool/interpolation/concat
    heads_ms: float
    fixed_ms: float
    runtime: str
    precision: str

    @property
    def total_ms(self) -> float:
        return sum(self.conv_ms.values()) + sum(self.other_ms.values()) + self.heads_ms + self.fixed_ms

    def to_json(self) -> dict:
        return {"conv_ms": self.conv_ms, "other_ms": self.other_ms, "heads_ms": self.heads_ms,
                "fixed_ms": self.fixed_ms, "runtime": self.runtime, "precision": self.precision}  # fmt: skip


def _block_label(name: str) -> str:
    """``encoder.down_blocks.0`` -> ``downblock_1`` (the profile's block labels)."""
    kind, _, index = name.rpartition(".")
    return ("downblock_" if kind.endswith("down_blocks") else "upblock_") + str(int(index) + 1)


def hourglass_widths(model: nn.Module) -> tuple[list[int], list[int]]:
    """Output channels of the down blocks and of the up blocks, in forward order; refuses a model
    whose predictor is not FOMM's hourglass (the latency model follows its skips)."""
    predictor = getattr(model, "predictor", None)
    encoder, decoder = getattr(predictor, "encoder", None), getattr(predictor, "decoder", None)
    if encoder is None or decoder is None or not hasattr(encoder, "down_blocks") or not hasattr(decoder, "up_blocks"):
        raise CompressbenchError(
            "latency-aware pruning plans FOMM's hourglass (encoder.down_blocks / decoder.up_blocks); "
            f"{type(predictor).__name__} has no such blocks: use a uniform prune ratio"
        )
    return ([b.conv.out_channels for b in encoder.down_blocks], [b.conv.out_channels for b in decoder.up_blocks])


def block_times_from_layers(layers: list[dict], model: nn.Module, runtime: str, precision: str) -> BlockTimes:
    """Fold a profile's per-layer rows (``block``, ``op``, ``latency_ms``) into :class:`BlockTimes`."""
    names = prunable_blocks(model)
    by_label = {_block_label(n): n for n in names}
    conv = {n: 0.0 for n in names}
    other = {n: 0.0 for n in names}
    heads = fixed = 0.0
    for row in layers:
        ms = float(row["latency_ms"])
        block = row["block"]
        if block in by_label:
            (conv if row["op"] == "conv" else other)[by_label[block]] += ms
        elif block in HEAD_BLOCKS and row["op"] == "conv":
            heads += ms
        else:
            fixed += ms
    return BlockTimes(conv, other, heads, fixed, runtime, precision)


def measure_block_times(model: nn.Module, runtime: str, precision: str, threads: int | None = None,
                        repeats: int = 20, size: int = 256, show_progress: bool = False) -> BlockTimes:  # fmt: skip
    """Each block's time on ``runtime``/``precision``, from its own per-op profiler (torch: module
    hooks), median of ``repeats`` calls."""
    hourglass_widths(model)
    record = profile(model, (1, 3, size, size), repeats=repeats, warmup=3, threads=threads,
                     runtime=runtime, precision=precision, show_progress=show_progress)  # fmt: skip
    if not record.layers:
        raise CompressbenchError(f"{runtime} reports no per-op times here, so blocks cannot be timed; use a uniform ratio")
    return block_times_from_layers(record.layers, model, runtime, precision)


def predicted_ms(times: BlockTimes, model: nn.Module, keep: dict[str, float]) -> float:
    """The latency model: ``keep`` maps block name -> kept fraction of its output channels."""
    down_w, up_w = hourglass_widths(model)
    n = len(down_w)
    down = [f"encoder.down_blocks.{i}" for i in range(n)]
    up = [f"decoder.up_blocks.{j}" for j in range(len(up_w))]
    k = {name: keep.get(name, 1.0) for name in down + up}
    total = times.fixed_ms
    for i, name in enumerate(down):
        k_in = 1.0 if i == 0 else k[down[i - 1]]
        total += times.conv_ms[name] * k_in * k[name] + times.other_ms[name] * k[name]
    for j, name in enumerate(up):
        if j == 0:
            k_in = k[down[-1]]
        else:  # its input is the previous up block concatenated with a down block's output
            skip = n - 1 - j
            k_in = (up_w[j - 1] * k[up[j - 1]] + down_w[skip] * k[down[skip]]) / (up_w[j - 1] + down_w[skip])
        total += times.conv_ms[name] * k_in * k[name] + times.other_ms[name] * (k_in + k[name]) / 2
    image = 3  # the predictor's output is the last up block concatenated with the image
    total += times.heads_ms * (up_w[-1] * k[up[-1]] + image) / (up_w[-1] + image)
    return total


def uniform_keep(model: nn.Module, ratio: float) -> dict[str, float]:
    return {name: 1.0 - ratio for name in prunable_blocks(model)}


def plan_ratios(times: BlockTimes, model: nn.Module, target_ms: float) -> dict[str, float]:
    """Per-block prune ratios whose predicted time is at most ``target_ms``, losing the least
    capacity (sum of log kept fractions): greedily, the block whose next ``STEP`` saves the most
    predicted time per unit of capacity lost. Returns ``{block: ratio}`` (0: kept whole)."""
    names = prunable_blocks(model)
    keep = {name: 1.0 for name in names}
    floor = 1.0 - MAX_BLOCK_RATIO
    current = predicted_ms(times, model, keep)
    while current > target_ms:
        best, best_gain = None, 0.0
        for name in names:
            if keep[name] - STEP < floor - 1e-9:
                continue
            trial = dict(keep, **{name: keep[name] - STEP})
            saved = current - predicted_ms(times, model, trial)
            lost = math.log(keep[name]) - math.log(keep[name] - STEP)
            if saved / lost > best_gain:
                best, best_gain = name, saved / lost
        if best is None:
            break  # every block at its floor: the target is below what pruning can reach
        keep[best] -= STEP
        current = predicted_ms(times, model, keep)
    return {name: round(1.0 - keep[name], 4) for name in names}


def plan_like_uniform(times: BlockTimes, model: nn.Module, ratio: float) -> dict[str, float]:
    """The plan predicted to be as fast as uniform ``ratio`` (and, by construction, keeping more capacity)."""
    return plan_ratios(times, model, predicted_ms(times, model, uniform_keep(model, ratio)))
