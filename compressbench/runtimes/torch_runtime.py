"""``torch``: PyTorch eager. fp32 as is; bf16 under CPU autocast; int8 through the ``quantize``
method's FX back-end (the hourglass and the jacobian head in int8, the rest in fp32).

bf16 uses ``torch.autocast("cpu", torch.bfloat16)`` rather than ``module.to(torch.bfloat16)``:
autocast runs convolutions in bf16 but keeps softmax and reductions in fp32 (its fp32 op list) and
needs no bf16 copy of the weights. On the reduced detector with random weights both gave the same
keypoint error against fp32 (0.031 px autocast, 0.028 px all-bf16, 8 held-out 64 px frames), so
accuracy does not decide; speed on a quiet machine is for benchmarks/runtimes_benchmark.py.
Outputs are returned as float32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.runtimes.base import Prepared, RunRecord, RuntimeUnavailable, default_calibration
from compressbench.runtimes.registry import register_runtime

INT8_CHAIN = "quantize"
INT8_OPTIONS = {"backend": "fx"}
# FX int8 concatenations of differently-scaled inputs requantize (that is the design); torch warns
# on every call, which would flood the terminal during timing.
warnings.filterwarnings("ignore", message="All inputs of this cat operator")


def autocast_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _as_float(out) -> dict:
    if isinstance(out, dict):
        return {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
    return out


def _is_quantized(module: nn.Module) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules()) or any(
        isinstance(getattr(m, "onnx_bytes", None), torch.Tensor) for m in module.modules()
    )


def _int8_module(module: nn.Module, batch: torch.Tensor, calibration: torch.Tensor | None) -> nn.Module:
    # here, not at the top: compression's ort quantize backend imports runtimes (compression -> runtimes -> here)
    from compressbench.compression import CompressionContext, apply_chain, get_method

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
        record = RunRecord("torch", self.version(), precision, precision, threads)
        context = contextlib.nullcontext
        if precision == "bf16":
            context = autocast_bf16
            if not getattr(torch.backends.mkldnn, "is_available", lambda: False)():
                record.notes.append("no oneDNN: bf16 convolutions use slow reference kernels")
            record.fallback_ops.append("softmax/reductions in fp32 (autocast)")
        elif precision == "int8":
            module = _int8_module(module, batch, calibration)
            record.fallback_ops.append("down, kp, softmax, soft_argmax, jacobian_pool in fp32 (FX int8 parts)")

        def run_on(images: torch.Tensor) -> dict:
            with torch.inference_mode(), context():
                return _as_float(module(images))

        return Prepared(run_on, batch, record, module=module)
