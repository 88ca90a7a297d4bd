"""Whole-graph int8: ONNX QDQ static quantization of an exported detector, for any ONNX runtime.

``onnxruntime.quantization.quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs around
every quantizable op of the *whole* detector (per-channel int8 weights, uint8 activations), with
ranges calibrated on calibration frames. ONNX Runtime fuses the pairs into integer kernels;
OpenVINO reads the same QDQ file and runs its int8 kernels. The calibration method decides the
activation ranges: ``minmax`` (the observed extremes), ``percentile`` (clips the rarest 0.01%),
``entropy`` (the range that keeps the histogram's KL divergence smallest).

The weightless heads after the heatmap convolution stay in float (:func:`float_scopes`), as they do
in the ``quantize`` method (:mod:`compressbench.compression.quantize.parts`). The spatial softmax
divides its input by the temperature (0.1), so it magnifies any rounding tenfold, and the
soft-argmax's products with the coordinate grid are the keypoints themselves: quantized, they cost
the default teacher 1.24 px in ONNX Runtime int8, in float 0.21 px (AMD EPYC, 32 held-out frames),
for a few thousand multiply-adds per keypoint. The heatmap-weighted jacobian pooling
(:class:`~compressbench.models.heads.HeatmapWeightedJacobian`: heatmap x jacobian maps, summed over
the pixels) stays in float for a second reason. Quantized,
OpenVINO's CPU plugin computed it wrongly: every pooled jacobian entry of every keypoint came back
as one constant (-389.8 on the default teacher: jacobian error 411.7 against fp32, while its
keypoints were within 1.1 px). With the Multiply's output exposed as a graph output, that product
was right and the values after its QuantizeLinear/DequantizeLinear pair were not; ONNX Runtime ran
the same file correctly (jacobian error 0.013).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import inspect
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from compressbench.errors import CompressbenchError
from compressbench.models.heads import HeatmapWeightedJacobian, SoftArgmax, SpatialSoftmax
from compressbench.profiling.machine import has_vnni
from compressbench.runtimes.base import first_line
from compressbench.runtimes.layers import release_float_nodes
from compressbench.runtimes.onnx import INPUT_NAME, detector_node_scope

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Chosen by keypoint error against fp32 on 16 held-out synthetic frames, calibrated on 32 training-split
# frames, ONNX Runtime: the default-weights teacher at 128 px: percentile 1.43 px, minmax 1.64,
# entropy 1.64 (entropy gave exactly minmax's ranges there); the reduced detector with random weights
# at 64 px: minmax 0.36, percentile 0.44. Trained weights decide. benchmarks/runtimes_benchmark.py
# --calibration compares them on the full teacher.
DEFAULT_CALIBRATION_METHOD = "percentile"
CALIBRATION_CHUNK = 8
# modules whose ONNX nodes the whole-graph QDQ model leaves in float (why: the module docstring)
FLOAT_MODULE_TYPES = (SpatialSoftmax, SoftArgmax, HeatmapWeightedJacobian)


def float_scopes(detector: torch.nn.Module) -> tuple[str, ...]:
    """ONNX node-name prefixes of the ``detector``'s modules that stay in float in its QDQ model."""
    return tuple(detector_node_scope(name) for name, m in detector.named_modules() if isinstance(m, FLOAT_MODULE_TYPES))


def nodes_under(graph_path: Path, scopes: tuple[str, ...]) -> list[str]:
    """Names of the nodes under ``scopes``; every scope must name at least one node (a renamed
    export would otherwise silently quantize what must stay float)."""
    import onnx

    names = [node.name for node in onnx.load(str(graph_path)).graph.node]
    found = []
    for scope in scopes:
        matched = [name for name in names if name.startswith(scope)]
        if not matched:
            raise CompressbenchError(f"QDQ int8: no ONNX node under {scope!r}, which must stay in float")
        found += matched
    return found


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIBRATION_METHODS:
        raise CompressbenchError(f"unknown calibration method {name!r}; known: {', '.join(CALIBRATION_METHODS)}")
    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]  # fmt: skip


def _reader(frames: torch.Tensor, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            chunks = torch.split(frames.detach().float(), CALIBRATION_CHUNK)
            self.feeds = iter([{input_name: c.contiguous().numpy()} for c in chunks])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    return Frames()


def weight_bits(graph: bytes) -> int | None:
    """7 or 8: the bits the QDQ ``graph``'s int8 weights use, read from the weights themselves
    (symmetric per-channel: each channel's largest weight maps to +-64 with reduce_range, else
    +-127); None when it holds no int8 weight."""
    import onnx
    import onnx.numpy_helper

    model = onnx.load_from_string(graph)
    largest = [int(np.abs(onnx.numpy_helper.to_array(t).astype(np.int16)).max())
               for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.dims]  # fmt: skip
    if not largest:
        return None
    return 7 if max(largest) <= 64 else 8


def int8_notes(method: str | None, graph: bytes) -> list[str]:
    """What a run record says about how its QDQ int8 ``graph`` was made: the calibration method and,
    read from the graph's weights, whether they are 7-bit."""
    notes = [f"QDQ calibration: {method or DEFAULT_CALIBRATION_METHOD}"]
    if weight_bits(graph) == 7:
        why = "this CPU has no VNNI, whose int16 pair sums saturate" if not has_vnni() else "asked for"
        notes.append(f"7-bit weights (reduce_range): {why}")
    return notes


def quantize_qdq(
    float_bytes: bytes,
    calibration: torch.Tensor,
    method: str = DEFAULT_CALIBRATION_METHOD,
    input_name: str = INPUT_NAME,
    keep_float: tuple[str, ...] = (),
    reduce_range: bool | None = None,
    float_layers: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
) -> bytes:
    """The QDQ int8 version of a float ONNX graph, calibrated on ``calibration`` (N, 3, S, S);
    the nodes whose names start with a ``keep_float`` prefix stay in float (:func:`float_scopes`).
    ``float_layers`` (prefixes, :mod:`.layers`): layers that stay float and read their inputs
    unquantized (:func:`~compressbench.runtimes.layers.release_float_nodes`); ``only``: when given,
    only the nodes under these prefixes are quantized. The activation ranges of one graph and one
    set of frames are calibrated once per process (:func:`_calibration_cache`), so a sensitivity
    analysis that quantizes the same graph with different float layers calibrates it once.
    ``reduce_range`` (7-bit weights) defaults to this CPU lacking VNNI (:func:`has_vnni`): on the
    reduced test detector on an AVX2-only AMD EPYC it halved the int8 error (AKD 0.88 -> 0.45 px in
    ONNX Runtime, 1.05 -> 0.43 px in OpenVINO)."""
    if reduce_range is None:
        reduce_range = not has_vnni()
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate_method = _method(method)
    # ONNX Runtime's shape inference writes a temporary model into the current folder when it gives
    # up (sym_shape_infer_temp.onnx); working inside the temporary folder keeps the user's folder clean
    with tempfile.TemporaryDirectory(prefix="compressbench-qdq-") as tmp, contextlib.chdir(tmp):
        float_path, pre_path, int8_path = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        float_path.write_bytes(float_bytes)
        try:
            # symbolic shape inference stops on the dynamic batch axis; ONNX's own inference suffices
            quant_pre_process(str(float_path), str(pre_path), skip_symbolic_shape=True)
            released = nodes_under(pre_path, tuple(float_layers))
            float_nodes = nodes_under(pre_path, tuple(keep_float)) + released
            quantized = nodes_under(pre_path, tuple(only)) if only is not None else None
            cache = _calibration_cache(pre_path, calibration, method, Path(tmp) / "ranges.json")
            with contextlib.redirect_stdout(io.StringIO()):  # its calibrators print progress on stdout
                quantize_static(
                    str(pre_path),
                    str(int8_path),
                    _reader(calibration, input_name),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=calibrate_method,
                    nodes_to_exclude=float_nodes,
                    nodes_to_quantize=quantized,
                    extra_options={"CalibTensorRangeSymmetric": False},
                    **cache.arguments,
                )
            cache.keep()
        except CompressbenchError:
            raise
        except Exception as exc:  # onnxruntime.quantization raises plain Exceptions and pybind errors
            raise CompressbenchError(f"QDQ int8 quantization failed: {first_line(exc)}") from None
        if not released:
            return int8_path.read_bytes()
        import onnx

        model = onnx.load(str(int8_path))
        release_float_nodes(model, released)
        return model.SerializeToString()


RANGES_KEPT = 4  # calibrated graphs whose activation ranges stay in memory (a few KB each)
_RANGES: collections.OrderedDict[str, str] = collections.OrderedDict()


class _CalibrationCache:
    """``quantize_static``'s ``calibration_cache_path`` (ONNX Runtime 1.32 and later) backed by
    :data:`_RANGES`: ``arguments`` to pass, ``keep()`` after a run that calibrated."""

    def __init__(self, key: str | None, path: Path) -> None:
        self.key, self.path = key, path
        self.arguments = {"calibration_cache_path": str(path)} if key is not None else {}
        if key is not None and key in _RANGES:
            path.write_text(_RANGES[key])
            _RANGES.move_to_end(key)

    def keep(self) -> None:
        if self.key is not None and self.key not in _RANGES and self.path.is_file():
            _RANGES[self.key] = self.path.read_text()
            while len(_RANGES) > RANGES_KEPT:
                _RANGES.popitem(last=False)


def _calibration_cache(graph_path: Path, calibration: torch.Tensor, method: str, path: Path) -> _CalibrationCache:
    """The cache entry of this pre-processed graph, these frames and this calibration method: the
    ranges depend on nothing else (not on which nodes are excluded, nor on reduce_range). Without
    ``calibration_cache_path`` (ONNX Runtime before 1.32) every call calibrates."""
    from onnxruntime.quantization import quantize_static

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        return _CalibrationCache(None, path)
    digest = hashlib.sha256(graph_path.read_bytes())
    digest.update(calibration.detach().float().contiguous().numpy().tobytes())
    digest.update(f"{tuple(calibration.shape)} {method}".encode())
    return _CalibrationCache(digest.hexdigest(), path)
