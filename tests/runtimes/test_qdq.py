"""What the whole-graph QDQ model leaves in float: the heatmap-weighted jacobian pooling, found by module type."""

from __future__ import annotations

import onnx
import pytest

from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.runtimes.onnx import export_onnx_bytes
from compressbench.runtimes.qdq import float_scopes, quantize_qdq

POOL = "/model/jacobian_pool/"


@pytest.fixture(scope="module")
def float_bytes(detector, batch) -> bytes:
    return export_onnx_bytes(detector, batch[:1])


def test_the_jacobian_pooling_is_the_only_float_scope(detector):
    assert float_scopes(detector) == (POOL,)
    no_jacobian = build_teacher(
        DetectorConfig(block_expansion=8, max_features=64, num_blocks=3, estimate_jacobian=False)
    )
    assert float_scopes(no_jacobian) == ()


def test_the_pooling_multiply_stays_float_and_the_rest_is_quantized(detector, float_bytes, calibration):
    graph = onnx.load_from_string(quantize_qdq(float_bytes, calibration[:8], keep_float=float_scopes(detector)))
    quantized_inputs = {n.input[0] for n in graph.graph.node if n.op_type == "QuantizeLinear"}
    pool_outputs = {out for n in graph.graph.node if n.name.startswith(POOL) and n.op_type == "Mul" for out in n.output}
    assert len(pool_outputs) == 1 and not pool_outputs & quantized_inputs
    # the heads' convolutions before it are still int8 (their outputs quantized)
    assert {"/model/jacobian/Conv_output_0", "/model/kp/Conv_output_0"} <= quantized_inputs


def test_a_scope_that_names_no_node_is_refused(float_bytes, calibration):
    with pytest.raises(CompressbenchError, match="no ONNX node under '/model/renamed/'"):
        quantize_qdq(float_bytes, calibration[:8], keep_float=("/model/renamed/",))
