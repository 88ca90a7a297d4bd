"""What the whole-graph QDQ model leaves in float: the weightless heads (softmax, soft-argmax, jacobian pooling), found by module type."""

from __future__ import annotations

import onnx
import onnx.numpy_helper
import pytest

from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.runtimes import qdq
from compressbench.runtimes.onnx import export_onnx_bytes
from compressbench.runtimes.qdq import float_scopes, quantize_qdq

POOL = "/model/jacobian_pool/"


@pytest.fixture(scope="module")
def float_bytes(detector, batch) -> bytes:
    return export_onnx_bytes(detector, batch[:1])


def test_the_weightless_heads_are_the_float_scopes(detector):
    assert float_scopes(detector) == ("/model/softmax/", "/model/soft_argmax/", POOL)
    no_jacobian = build_teacher(
        DetectorConfig(block_expansion=8, max_features=64, num_blocks=3, estimate_jacobian=False)
    )
    assert float_scopes(no_jacobian) == ("/model/softmax/", "/model/soft_argmax/")


def test_the_heads_stay_float_and_the_rest_is_quantized(detector, float_bytes, calibration):
    graph = onnx.load_from_string(quantize_qdq(float_bytes, calibration[:8], keep_float=float_scopes(detector)))
    quantized_inputs = {n.input[0] for n in graph.graph.node if n.op_type == "QuantizeLinear"}
    pool_outputs = {out for n in graph.graph.node if n.name.startswith(POOL) and n.op_type == "Mul" for out in n.output}
    assert len(pool_outputs) == 1 and not pool_outputs & quantized_inputs
    # nothing the softmax or soft-argmax computes is quantized: the keypoints come out of float math
    head_outputs = {out for n in graph.graph.node if n.name.startswith(("/model/softmax/", "/model/soft_argmax/")) for out in n.output}
    assert head_outputs and not head_outputs & quantized_inputs
    # the heads' convolutions before them are still int8 (their outputs quantized)
    assert {"/model/jacobian/Conv_output_0", "/model/kp/Conv_output_0"} <= quantized_inputs


def test_a_scope_that_names_no_node_is_refused(float_bytes, calibration):
    with pytest.raises(CompressbenchError, match="no ONNX node under '/model/renamed/'"):
        quantize_qdq(float_bytes, calibration[:8], keep_float=("/model/renamed/",))


def int8_weight_range(graph_bytes: bytes) -> tuple[int, int]:
    graph = onnx.load_from_string(graph_bytes)
    values = [onnx.numpy_helper.to_array(t) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    return int(min(v.min() for v in values)), int(max(v.max() for v in values))


def test_reduce_range_keeps_weights_to_seven_bits_and_full_range_uses_eight(float_bytes, calibration):
    low, high = int8_weight_range(quantize_qdq(float_bytes, calibration[:4], reduce_range=True))
    assert max(-low, high) == 64  # symmetric 7-bit: ONNX Runtime maps the largest weight to +-64
    low, high = int8_weight_range(quantize_qdq(float_bytes, calibration[:4], reduce_range=False))
    assert low == -127 or high == 127  # per-channel symmetric: each channel's largest weight maps to +-127


@pytest.mark.parametrize("vnni, reduce_range, why", [(True, False, None), (False, True, "no VNNI"), (True, True, "asked for")])
def test_the_seven_bit_note_is_read_from_the_graph_s_weights(monkeypatch, float_bytes, calibration, vnni, reduce_range, why):
    graph = quantize_qdq(float_bytes, calibration[:4], reduce_range=reduce_range)
    assert qdq.weight_bits(graph) == (7 if reduce_range else 8)
    monkeypatch.setattr(qdq, "has_vnni", lambda: vnni)
    notes = qdq.int8_notes(None, graph)
    assert notes[0] == f"QDQ calibration: {qdq.DEFAULT_CALIBRATION_METHOD}"
    seven = [n for n in notes if n.startswith("7-bit weights (reduce_range)")]
    assert (why in seven[0]) if why else not seven


def test_a_float_graph_has_no_weight_bits(float_bytes):
    assert qdq.weight_bits(float_bytes) is None
