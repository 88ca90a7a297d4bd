"""What every runtime provides: a :class:`Prepared` runner and a :class:`RunRecord` of what ran.

A runtime turns (module, example batch, threads, precision) into a :class:`Prepared` runner: calling
it runs one inference on the example batch and returns the project's output dict (``value``,
``jacobian``, ``heatmap`` as float torch tensors); :meth:`Prepared.outputs` runs other frames through
the same compiled model (for fidelity). Two ways to fail, kept apart on purpose:

- :class:`RuntimeUnavailable`: this *model* or *precision* cannot run here (an op the exporter
  rejects, a precision the runtime lacks). A comparison keeps going; the message becomes a row note.
- :class:`RuntimeMissing`: the runtime itself is not installed. That is the user's set-up, so it is a
  :class:`CompressbenchError`: one line on stderr, exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import torch

from compressbench.data import frames_for
from compressbench.errors import CompressbenchError

PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_CALIBRATION_FRAMES = 32
UNKNOWN = "unknown"  # a fact the runtime did not let us read back: said, never guessed
MIXED = "mixed"  # no one precision ran most of the convolutions


class RuntimeUnavailable(Exception):
    """This model or precision cannot run on the chosen runtime; the message says why (one line)."""


class RuntimeMissing(CompressbenchError):
    """The runtime's package is not installed (or cannot be imported) on this machine."""


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise CompressbenchError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    return precision


def parse_runtime(text: str, precision: str | None = None) -> tuple[str, str]:
    """``"openvino"`` or ``"openvino:bf16"`` (plus an explicit ``precision``, which wins) -> (name, precision)."""
    name, _, embedded = text.partition(":")
    return name, check_precision(precision or embedded or "fp32")


@dataclass
class RunRecord:
    """What actually ran, read back from the runtime after it compiled the model (never the request
    echoed): the runtime and its version, the precision asked for and the one the convolutions ran
    in (``precision_used``), and the ops that ran in another precision than asked
    (``fallback_ops``: "op precision xN"). ``source`` says where those two were read from
    (:data:`UNKNOWN`: nowhere, the record was written without asking the runtime); a fact that
    could not be read is :data:`UNKNOWN` too (``precision_used == "unknown"``,
    ``fallback_ops == ["unknown"]``), and :meth:`summary` says so."""

    runtime: str
    version: str
    precision_requested: str
    precision_used: str
    threads: int
    fallback_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = UNKNOWN
    # int8 runs: the layers (module names, runtimes.layers) whose weighted ops ran in a float
    # precision, read back like precision_used: "kp fp32", "predictor.decoder.up_blocks.4.conv bf16"
    float_layers: list[str] = field(default_factory=list)
    # the kernels the convolutions ran on, where the runtime names them ("brgconv_avx512_I8 x12"),
    # and under an ISA cap (ONEDNN_MAX_CPU_ISA) the kernels whose names say they ran above it
    kernels: list[str] = field(default_factory=list)
    kernels_above_cap: list[str] = field(default_factory=list)
    isa_cap: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str | None:
        """One line for a row note where the run deviated from the request or could not be read, else None."""
        parts = []
        if self.precision_used == UNKNOWN:
            parts.append(f"{self.runtime}: precision used unknown (asked {self.precision_requested}; not read back)")
        elif self.precision_used != self.precision_requested:
            parts.append(f"{self.runtime} ran {self.precision_used} (asked {self.precision_requested})")
        if self.fallback_ops == [UNKNOWN]:
            parts.append(f"ops not in {self.precision_requested}: unknown")
        elif self.fallback_ops:
            parts.append(f"not in {self.precision_requested}: {', '.join(self.fallback_ops)}")
        if self.float_layers:
            parts.append(f"float layers: {', '.join(self.float_layers)}")
        if self.kernels_above_cap:
            parts.append(f"above the ISA cap {self.isa_cap}: {', '.join(self.kernels_above_cap)}")
        parts += self.notes
        return "; ".join(parts) or None


def observed_precision(
    counts: Mapping[tuple[str, str], int], requested: str, is_convolution: Callable[[str], bool]
) -> tuple[str, list[str]]:
    """(precision_used, fallback_ops) from the ops a runtime reports it ran, counted by
    (op, precision): the precision more than half the convolutions ran in (they carry nearly all
    the work; :data:`MIXED` when none did, :data:`UNKNOWN` when no convolution was reported), and
    every op that ran in another precision than ``requested``, as "op precision xN"."""
    if not counts:
        return UNKNOWN, [UNKNOWN]
    convs: dict[str, int] = {}
    for (op, precision), n in counts.items():
        if is_convolution(op):
            convs[precision] = convs.get(precision, 0) + n
    used = UNKNOWN
    if convs:
        top = max(convs, key=convs.get)
        used = top if 2 * convs[top] > sum(convs.values()) else MIXED
    fallback = [f"{op} {precision} x{n}" for (op, precision), n in sorted(counts.items()) if precision != requested]
    return used, fallback


@dataclass
class Prepared:
    """One inference on the example batch as a zero-argument call, the same compiled model for
    other frames (``run_on``), and the record of what ran."""

    run_on: Callable[[torch.Tensor], dict]
    batch: torch.Tensor
    record: RunRecord
    module: object = None  # the nn.Module that runs (torch runtime only), for eager hooks
    graph: bytes | None = None  # the serialized program that runs: ONNX (attribution, size) or the .pte
    compiled: object = None  # the runtime's compiled model (openvino), for attribution
    program: object = None  # the runtime's own model when it is not ``graph`` (NNCF's OpenVINO model)
    size_bytes: int | None = None  # what ships, where it is not ``graph`` (NNCF: the OpenVINO IR)
    layout: object = None  # what names the runtime profiler's events (ExecuTorch: the program's kernel slots)

    def __call__(self) -> dict:
        return self.run_on(self.batch)

    @property
    def note(self) -> str | None:
        return self.record.summary()

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run ``images`` through the runner in chunks of the example batch's size (runtimes compile
        for that static shape; the last chunk is padded by repeating frames, then cut)."""
        return outputs_in_chunks(self.run_on, images, len(self.batch))


def outputs_in_chunks(run_on: Callable[[torch.Tensor], dict], images: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """``run_on`` (compiled for batches of ``size``) over all ``images``, chunk by chunk; the last
    chunk is padded by repeating frames, then cut. Outputs in float32."""
    pieces: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        count = len(chunk)
        if count < size:
            chunk = chunk[torch.arange(size) % count]
        for key, value in run_on(chunk.float().contiguous()).items():
            pieces.setdefault(key, []).append(value[:count].float())
    return {key: torch.cat(values) for key, values in pieces.items()}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def default_calibration(batch: torch.Tensor, count: int = DEFAULT_CALIBRATION_FRAMES) -> torch.Tensor:
    """Synthetic calibration frames (the training split, so never the held-out evaluation frames)
    at the batch's image size, for int8 runs whose caller gave none."""
    return frames_for("synthetic", count, split="train", seed=0, size=int(batch.shape[-1])).images


def openmp_wait_policy() -> str:
    """``OMP_WAIT_POLICY`` as torch's OpenMP runtime read it at start-up (``unset``: it busy-waits)."""
    return os.environ.get("OMP_WAIT_POLICY", "unset")


def openmp_policy_note() -> str | None:
    """A note for records that time eager PyTorch, the baseline of every speed-up, under
    OMP_WAIT_POLICY=PASSIVE: its OpenMP workers then sleep between parallel regions, which made the
    eager teacher 28% slower against the same OpenVINO int8 ruler (benchmarks/omp_policy_probe.py,
    three processes per policy, AMD EPYC AVX-512, 2 threads), so ratios over eager read high. The
    default policy's spinning is waited out between turns instead
    (:func:`compressbench.profiling.timing.wait_until_idle`). libgomp reads the variable when torch
    is imported, so it cannot be undone inside the process."""
    if openmp_wait_policy().upper() != "PASSIVE":
        return None
    return (
        "OMP_WAIT_POLICY=PASSIVE slows eager PyTorch itself (measured +28% on the teacher), so speed-ups over "
        "eager read high; unset it to compare with PyTorch as deployed"
    )
