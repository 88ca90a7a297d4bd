"""``torch``: PyTorch eager. fp32 as is; bf16 under CPU autocast; int8 through the ``quantize``
method's FX back-end (the hourglass and the jacobian head in int8, the rest in fp32).

bf16 uses ``torch.autocast("cpu", torch.bfloat16)`` rather than ``module.to(torch.bfloat16)``:
it needs no bf16 copy of the weights. On the reduced detector with random weights both gave the same
keypoint error against fp32 (0.031 px autocast, 0.028 px all-bf16, 8 held-out 64 px frames), so
accuracy does not decide; speed on a quiet machine is for benchmarks/runtimes_benchmark.py.
Outputs are returned as float32.

What ran is read back, not assumed: :func:`traced_precisions` runs the prepared call once (at
prepare time, untimed) under a dispatch mode that sees every aten and quantized op after autocast
and FX conversion have chosen its dtype. Read back on the reduced detector, CPU autocast ran the
softmax and the soft-argmax's reductions in bf16 too (its CPU fp32 list does not hold them), and
the FX int8 model ran its decoder's upsampling and concatenations in fp32 between dequantize and
quantize.
"""

from __future__ import annotations

import collections
import contextlib
import warnings

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import (
    UNKNOWN,
    Prepared,
    RunRecord,
    RuntimeUnavailable,
    default_calibration,
    observed_precision,
)
from compressbench.runtimes.onnxruntime_runtime import has_onnxruntime_parts
from compressbench.runtimes.registry import register_runtime

INT8_CHAIN = "quantize"
INT8_OPTIONS = {"backend": "fx"}
# FX int8 concatenations of differently-scaled inputs requantize (that is the design); torch warns
# on every call, which would flood the terminal during timing.
warnings.filterwarnings("ignore", message="All inputs of this cat operator")
READ_BACK_SOURCE = "torch dispatch trace of one call"
DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64",
          torch.quint8: "int8", torch.qint8: "int8", torch.qint32: "int32"}  # fmt: skip
# ops that only move a tensor between precisions or memory: they compute in none
CONVERSIONS = {"_to_copy", "to", "copy_", "clone", "contiguous", "detach", "lift_fresh",
               "quantize_per_tensor", "quantize_per_channel", "dequantize"}  # fmt: skip


def autocast_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _as_float(out) -> dict:
    if isinstance(out, dict):
        return {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
    return out


def _computed(tensors) -> torch.Tensor | None:
    return next((t for t in tensors if t.is_floating_point() or t.is_quantized), None)


class _OpPrecisions(TorchDispatchMode):
    """Counts the ops a call runs by (op, precision of the tensor it computes): the output's dtype,
    which for mixed inputs is the promoted type the kernel ran in. Views, conversions and factory
    ops (no tensor input) compute nothing and are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if inputs and not func.is_view and name not in CONVERSIONS:
            computed = _computed(t for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            if computed is not None:
                self.counts[(name, DTYPES.get(computed.dtype, str(computed.dtype)))] += 1
        return out


def traced_precisions(call, images: torch.Tensor) -> collections.Counter:
    """(op, precision) counts of one ``call(images)``, as the dispatcher ran it."""
    with _OpPrecisions() as trace:
        call(images)
    return trace.counts


def torch_record(call, module: nn.Module, batch: torch.Tensor, precision: str, threads: int,
                 notes: list[str] | None = None) -> RunRecord:  # fmt: skip
    """The run record of ``call`` (``module`` on a batch like ``batch``, at ``precision``), read
    back from a trace of one call on one frame; unknown where parts run in ONNX Runtime."""
    notes = list(notes or [])
    if has_onnxruntime_parts(module):
        # ONNX Runtime runs those parts outside torch's dispatcher: a trace would see only the rest
        used, fallback, source = UNKNOWN, [UNKNOWN], UNKNOWN
        notes.append("its ONNX Runtime parts run outside PyTorch: their precision is not read back")
    else:
        # one frame is enough: autocast and the FX model pick an op's dtype by op, not by batch size
        with torch.no_grad():
            counts = traced_precisions(call, batch[:1])
        used, fallback = observed_precision(counts, precision, lambda op: "conv" in op)
        source = READ_BACK_SOURCE if used != UNKNOWN else UNKNOWN
    return RunRecord("torch", str(torch.__version__), precision, used, threads, fallback, notes, source)


def _is_quantized(module: nn.Module) -> bool:
    quantized = any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules())
    return quantized or has_onnxruntime_parts(module)


def _int8_module(module: nn.Module, batch: torch.Tensor, calibration: torch.Tensor | None) -> nn.Module:
    # Upward (runtimes -> compression), on purpose: torch's int8 precision *is* the quantize method's
    # fx chain, reused rather than written twice. Here, not at the top, since compression's ort backend
    # imports runtimes: only this call (int8 on the torch runtime) needs compression loaded.
    from compressbench.compression import CompressionContext, apply_chain, get_method  # up: see above

    if _is_quantized(module):
        raise RuntimeUnavailable("torch int8: this model is already quantized; measure it at fp32")
    frames = calibration if calibration is not None else default_calibration(batch)
    context = CompressionContext(
        calibration_frames=lambda n: frames[:n], input_shape=(1, *batch.shape[1:]), show_progress=False
    )
    options = get_method(INT8_CHAIN).resolve({**INT8_OPTIONS, "calib": min(len(frames), 32)})
    try:
        return apply_chain(module, INT8_CHAIN, [options], context)[-1][0].eval()
    except CompressbenchError as exc:
        raise RuntimeUnavailable(f"torch int8 (FX): {exc}") from None


@register_runtime
class TorchRuntime:
    name = "torch"
    summary = "PyTorch eager (fp32; bf16 under autocast; int8 = quantize backend=fx on the hourglass and jacobian)"

    def version(self) -> str:
        return str(torch.__version__)

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        # torch's threads are process-wide: the caller pins them (torch_threads) for the whole measurement
        notes = []
        context = contextlib.nullcontext
        if precision == "bf16":
            context = autocast_bf16
            if not getattr(torch.backends.mkldnn, "is_available", lambda: False)():
                notes.append("no oneDNN: bf16 convolutions use slow reference kernels")
        elif precision == "int8":
            module = _int8_module(module, batch, calibration)

        def run_on(images: torch.Tensor) -> dict:
            with torch.inference_mode(), context():
                return _as_float(module(images))

        record = torch_record(run_on, module, batch, precision, threads, notes)
        return Prepared(run_on, batch, record, module=module)

    artifact_suffix = ".pt"

    def write_artifact(self, prepared: Prepared, folder) -> list:
        raise RuntimeUnavailable("in PyTorch the variant itself is what ships: save it with compress --out FILE.pt "
                                 "(load_model reads it back); export writes openvino, onnxruntime or executorch files")  # fmt: skip

    def load_artifact(self, path, threads: int, precision: str, outputs: list[str]):
        raise RuntimeUnavailable("a PyTorch variant file is a model: pass it as --model")
