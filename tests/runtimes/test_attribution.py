"""Per-op times mapped onto the detector's modules and blocks, and adding up.

"Adds up" is checked call by call, where both numbers come from the same call (in the median call):

- ONNX Runtime: its node times sum to between 20% and 100% of the ``model_run`` span they lie in
  (the rest is the run's own overhead: input/output copies, large on this tiny 64 px model);
- OpenVINO: its per-layer counters sum to between 20% and 300% of the call's wall time. They were
  seen to exceed it (median 1.3-2.3x on this loaded 2-core machine, in a process that had also
  created ONNX Runtime sessions; 0.9-1.0x in a fresh process), the complaint of
  openvinotoolkit/openvino issue 24517. Why is not established here; ``profile`` reports the
  gap in percent next to the end-to-end median rather than hiding it.

"""

from __future__ import annotations

import pytest

from compressbench.profiling import profile
from compressbench.runtimes import prepare
from compressbench.runtimes.attribution import attribute, group_of, layer_of, op_timer

REPEATS = 6
MIN_SHARE = 0.2
# ONNX Runtime times its nodes inside its own model_run span: they cannot exceed it. OpenVINO's
# counters can (see the module docstring), by up to 2.3x measured here.
MAX_SHARE = {"onnxruntime": 1.001, "openvino": 3.0}


@pytest.mark.parametrize("node, group", [
    ("/model/down/Conv", "anti_alias"),
    ("images_f32_abcd_bf16_acdb_/model/down/Conv", "anti_alias"),
    ("/model/predictor/encoder/down_blocks.0/conv/Conv/WithoutBiases", "hourglass"),
    ("/model/predictor/decoder/concats.1/Concat", "hourglass"),
    ("/model/kp/Conv_output_0_QuantizeLinear", "heatmap_keypoint"),
    ("/model/softmax/Softmax", "heatmap_keypoint"),
    ("value", "heatmap_keypoint"),
    ("/model/jacobian_pool/ReduceSum", "jacobian"),
    ("model.jacobian.bias_DequantizeLinear", "jacobian"),
    ("Constant_232", "other"),
])  # fmt: skip
def test_node_names_map_to_module_groups(node, group):
    assert group_of(node) == group


@pytest.mark.parametrize("node, op_type, layer", [
    ("/model/predictor/encoder/down_blocks.0/conv/Conv/WithoutBiases", "Convolution", ("downblock_1", "conv")),
    ("/model/predictor/encoder/down_blocks.2/pool/AveragePool", "AvgPool", ("downblock_3", "avgpool")),
    ("/model/predictor/decoder/up_blocks.1/Resize", "Resize", ("upblock_2", "interpolation")),
    ("/model/predictor/decoder/up_blocks.0/conv/Conv", "FusedConv", ("upblock_1", "conv")),
    ("/model/predictor/decoder/concats.2/Concat", "Concat", ("upblock_3", "concat")),
    ("/model/down/Conv", "GroupConvolution", ("anti_alias", "blur_subsample")),
    ("/model/kp/Conv", "Conv", ("heatmap_keypoint", "conv")),
    ("/model/soft_argmax/ReduceSum", "ReduceSum", ("heatmap_keypoint", "reducesum")),
])  # fmt: skip
def test_node_names_map_to_blocks_and_ops(node, op_type, layer):
    assert layer_of(node, op_type) == layer


def test_attribute_loses_no_op():
    calls = [{"/model/down/Conv": ("Conv", 1.5), "/model/kp/Conv": ("Conv", 0.5), "Constant_1": ("Mul", 0.25)}]
    out = attribute(calls)
    assert out["groups"] == [{"anti_alias": 1.5, "heatmap_keypoint": 0.5, "other": 0.25}]
    assert out["totals"] == [2.25]
    assert sum(out["layers"][0].values()) == 2.25


@pytest.mark.parametrize("runtime, precision", [("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                                                ("openvino", "fp32"), ("openvino", "bf16")])  # fmt: skip
def test_per_op_times_add_up_per_call(runtime, precision, detector, batch, calibration):
    prepared = prepare(runtime, detector, batch, 1, precision, calibration)
    timer = op_timer(prepared)
    for _ in range(REPEATS + 2):  # the first calls after compiling carry one-time set-up
        timer()
    calls = timer.calls(REPEATS)
    assert len(calls) == REPEATS and len(timer.run_ms) == REPEATS
    attributed = attribute(calls)
    for groups, total in zip(attributed["groups"], attributed["totals"]):
        assert sum(groups.values()) == pytest.approx(total)
        assert {"anti_alias", "hourglass", "heatmap_keypoint", "jacobian"} <= set(groups)
    shares = sorted(t / c for t, c in zip(attributed["totals"], timer.run_ms))
    assert MIN_SHARE <= shares[len(shares) // 2] <= MAX_SHARE[runtime]


def test_profile_record_on_a_runtime(detector):
    record = profile(detector, (1, 3, 64, 64), warmup=1, repeats=3, threads=1, show_progress=False,
                     runtime="openvino", precision="fp32")  # fmt: skip
    assert [m["name"] for m in record.modules][:4] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    att = record.attribution
    assert att["modules_sum_ms"] == pytest.approx(sum(m["latency_ms"] for m in record.modules))
    assert att["modules_gap_pct"] == pytest.approx(
        100 * (att["modules_sum_ms"] - att["end_to_end_ms"]) / att["end_to_end_ms"]
    )
    assert {(r["block"], r["op"]) for r in record.layers} >= {
        ("downblock_1", "conv"),
        ("upblock_3", "interpolation"),
    }
    env = record.env
    assert (env["runtime"], env["precision"], env["precision_used"]) == ("openvino", "fp32", "fp32")
    assert env["runtime_version"] == record.runtime["version"]


def test_profile_torch_bf16_uses_eager_hooks(detector):
    record = profile(detector, (1, 3, 64, 64), warmup=1, repeats=3, threads=1, show_progress=False, precision="bf16")
    assert [m["name"] for m in record.modules] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    assert record.env["precision_used"] == "bf16" and record.runtime["runtime"] == "torch"
