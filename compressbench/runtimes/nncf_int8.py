"""OpenVINO's own int8 path: NNCF post-training quantization of the OpenVINO model.

Where :mod:`.qdq` quantizes the ONNX graph with ONNX Runtime's tools and lets OpenVINO read the
QDQ pairs, NNCF quantizes the OpenVINO model itself: it inserts FakeQuantize ops where OpenVINO's
CPU plugin has int8 kernels, calibrates them on the calibration frames and corrects the biases the
rounding shifts (``fast_bias_correction``). The heatmap-weighted jacobian pooling stays in float
here too (``ignored_scope``), for the reason :mod:`.qdq` gives. ``nncf`` is an optional
dependency (``make install`` installs it; it needs no torch): without it ``--calibration nncf``
answers one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
from pathlib import Path

import torch

from compressbench.runtimes.base import RuntimeMissing, RuntimeUnavailable, first_line

METHOD = "nncf"  # the calibration method's name next to qdq's minmax / percentile / entropy


def nncf_version() -> str:
    try:
        import nncf
    except ImportError:
        raise RuntimeMissing("nncf is not installed; run `make install` (pip install nncf)") from None
    return nncf.__version__


def quantize_openvino(
    graph: bytes,
    batch: torch.Tensor,
    calibration: torch.Tensor,
    keep_float: tuple[str, ...],
    only: tuple[str, ...] | None = None,
):
    """The NNCF int8 OpenVINO model of the float ONNX ``graph`` at ``batch``'s static shape, calibrated
    on every frame of ``calibration`` (one at a time); ops whose names start with a ``keep_float``
    prefix stay in float, and with ``only`` every op whose name starts with none of its prefixes
    does too (one ignored-scope pattern with a negative lookahead)."""
    nncf_version()
    import nncf
    import openvino as ov

    model = ov.Core().read_model(graph)
    model.reshape({model.inputs[0].get_any_name(): list(batch.shape)})
    names = [op.get_friendly_name() for op in model.get_ops()]
    for scope in (*keep_float, *(only or ())):
        if not any(name.startswith(scope) for name in names):
            role = "which must stay in float" if scope in keep_float else "the only scope to quantize"
            raise RuntimeUnavailable(f"NNCF int8: no OpenVINO op under {scope!r}, {role}")
    size = len(batch)
    frames = calibration.detach().float()
    items = [frames[i : i + size].contiguous().numpy() for i in range(0, len(frames) - size + 1, size)]
    patterns = [re.escape(s) + ".*" for s in keep_float]
    if only is not None:
        patterns.append("(?!" + "|".join(re.escape(s) for s in only) + ").*")
    ignored = nncf.IgnoredScope(patterns=patterns, validate=False)
    # NNCF logs progress bars and INFO lines on stdout/stderr; compressbench shows its own progress
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), ignored_scope=ignored)
    except Exception as exc:  # NNCF raises its own errors and OpenVINO's C++ ones
        raise RuntimeUnavailable(f"NNCF int8 quantization failed: {first_line(exc)}") from None
    finally:
        logger.setLevel(level)


def model_bytes(model) -> int:
    """Bytes of the model as OpenVINO IR (.xml + .bin): what a user ships."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="compressbench-ov-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
