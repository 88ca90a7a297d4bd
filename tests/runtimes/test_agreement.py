"""Every runtime x precision agrees with eager fp32 on the reduced detector, within a stated bound.

Bounds (the reduced detector with lively random weights, 8 held-out 64 px frames, 16 calibration
frames): fp32 agrees to 1e-4 on every output (measured ~3e-7); bf16 keypoints within 0.1 px (measured
0.02-0.03 px); int8 keypoints within 1.0 px (measured: torch FX 0.04 px, whole-graph QDQ 0.3-0.5 px); int8 jacobians
within 0.05 mean absolute error (measured: torch 0.0006, onnxruntime 0.0067, openvino 0.0058; openvino
was 1.29 while the QDQ model quantized the heatmap-weighted jacobian pooling, see runtimes/qdq.py).
"""

from __future__ import annotations

import pytest
import torch

from compressbench import metrics
from compressbench.runtimes import RuntimeUnavailable, prepare
from tests.runtimes.conftest import SIZE

FP32_ATOL = 1e-4
AKD_BOUND_PX = {"bf16": 0.1, "int8": 1.0}
INT8_JACOBIAN_BOUND = 0.05
RUNS = [
    ("torch", "fp32"), ("torch", "bf16"), ("torch", "int8"),
    ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
    ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"),
]  # fmt: skip
OUTPUTS = ("value", "jacobian", "heatmap")


@pytest.fixture(scope="module")
def reference(detector, held_out):
    with torch.inference_mode():
        return detector(held_out)


@pytest.mark.parametrize("runtime, precision", RUNS)
def test_outputs_agree_with_eager_fp32(runtime, precision, detector, batch, held_out, calibration, reference):
    prepared = prepare(runtime, detector, batch, 1, precision, calibration)
    out = prepared.outputs(held_out)  # 8 frames through a batch-2 runner: four chunks
    assert set(out) == set(OUTPUTS)
    for key in OUTPUTS:
        assert out[key].dtype == torch.float32 and out[key].shape == reference[key].shape
    record = prepared.record
    assert (record.runtime, record.precision_requested, record.threads) == (runtime, precision, 1)
    if precision == "fp32":
        for key in OUTPUTS:
            torch.testing.assert_close(out[key], reference[key], atol=FP32_ATOL, rtol=0)
        assert record.precision_used == "fp32" and record.fallback_ops == []
    else:
        akd = float(metrics.akd_px(out["value"], reference["value"], SIZE))
        assert 0 < akd < AKD_BOUND_PX[precision]
    # one call on the example batch is the timed inference
    assert prepared()["value"].shape == (len(batch), 10, 2)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "openvino"])
def test_int8_jacobians_agree_with_eager_fp32(runtime, detector, batch, held_out, calibration, reference):
    out = prepare(runtime, detector, batch, 1, "int8", calibration).outputs(held_out)
    error = float(metrics.jacobian_error(out["jacobian"], reference["jacobian"]))
    assert 0 < error < INT8_JACOBIAN_BOUND
    # the failure this guards against: one constant in every entry of every keypoint's jacobian
    assert out["jacobian"].flatten(2).std(dim=2).min() > 0.01


def test_openvino_fp32_is_asked_for_explicitly(detector, batch):
    """On a CPU with bf16 support the plugin's default would be bf16; fp32 must mean fp32."""
    from compressbench.runtimes.openvino_runtime import runtime_precisions

    prepared = prepare("openvino", detector, batch, 1, "fp32")
    convs = {p for (layer, p), _ in runtime_precisions(prepared.compiled).items() if layer == "Convolution"}
    assert convs == {"f32"}


def test_openvino_int8_is_the_percentile_qdq_graph_unless_nncf_is_asked_for(detector, batch, calibration):
    prepared = prepare("openvino", detector, batch, 1, "int8", calibration)
    assert prepared.record.precision_used == "int8" and "QDQ calibration: percentile" in prepared.record.notes
    nncf = prepare("openvino", detector, batch, 1, "int8", calibration, "nncf")
    assert nncf.record.precision_used == "int8"
    assert any(n.startswith("int8: NNCF ") for n in nncf.record.notes)


def test_onnxruntime_int8_names_the_ops_left_in_float(detector, batch, calibration):
    prepared = prepare("onnxruntime", detector, batch, 1, "int8", calibration)
    fallback = prepared.record.fallback_ops
    assert fallback and all(" x" in item for item in fallback)
    assert not any(item.startswith("Conv ") for item in fallback)  # every convolution became int8


def test_a_model_that_does_not_export_is_unavailable_not_fatal(detector, batch, calibration):
    int8 = prepare("torch", detector, batch, 1, "int8", calibration).module
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(RuntimeUnavailable, match="cannot export"):
            prepare(runtime, int8, batch, 1, "fp32")
