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

from compressbench.runtimes import prepare
from compressbench.runtimes.attribution import attribute, group_of, layer_of, name_executorch_events, op_timer
from compressbench.runtimes.executorch_runtime import KernelSlot
from compressbench.runtimes.profile import profile

REPEATS = 6
MIN_SHARE = 0.2
# ONNX Runtime times its nodes inside its own model_run span: they cannot exceed it. OpenVINO's
# counters can (see the module docstring), by up to 2.3x measured here.
MAX_SHARE = {"onnxruntime": 1.001, "openvino": 3.0, "executorch": 1.001}


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


# a program as ExecuTorch lowers the tiny detector (tests.compression.swap_helpers.lively_teacher), its
# ETDump events as recorded for two calls (XNNPACK names its kernels; portable ops are native_call_*)
DOWN, CONV0, POOL0 = "model.down", "model.predictor.encoder.down_blocks.0.conv", "model.predictor.encoder.down_blocks.0.pool"
UP2, CAT2, KP, SOFTMAX = ("model.predictor.decoder.up_blocks.2.conv", "model.predictor.decoder.concats.2", "model.kp",
                          "model.softmax")  # fmt: skip
LAYOUT = (
    KernelSlot("arange.start_out", "model.soft_argmax"),
    KernelSlot("delegate", nodes=(("constant_pad_nd", DOWN), ("convolution", DOWN))),
    KernelSlot("upsample_nearest2d.vec_out", DOWN),
    KernelSlot("delegate", nodes=(("convolution", CONV0), ("_native_batch_norm_legit_no_training", CONV0[:-4] + "norm"),
                                  ("relu", CONV0[:-4] + "relu"), ("avg_pool2d", POOL0))),
    KernelSlot("delegate", nodes=(("mul", "model.soft_argmax"), ("convolution", UP2), ("relu", UP2[:-4] + "relu"),
                                  ("cat", CAT2), ("convolution", KP), ("view_copy", SOFTMAX), ("_softmax", SOFTMAX))),
)  # fmt: skip
EVENTS = [
    ("native_call_arange.start_out", [0.02, 0.01]), ("OPERATOR_CALL", [0.03, 0.02]),
    ("Constant Pad (ND, X32) #1", [0.02, 0.02]), ("Transpose (ND, X32) #1", [0.01, 0.01]),
    ("Convolution (NHWC, F32) IGEMM #1", [0.4, 0.38]), ("Transpose (ND, X32) #2", [0.01, 0.01]),
    ("DELEGATE_CALL", [0.5, 0.44]),
    ("native_call_upsample_nearest2d.vec_out", [0.015, 0.005]), ("OPERATOR_CALL", [0.016, 0.006]),
    ("Transpose (ND, X32) #1", [0.01, 0.001]), ("Convolution (NHWC, F32) IGEMM #1", [0.003, 0.005]),
    ("Average Pooling (NHWC, F32) Average Pooling #1", [0.009, 0.003]), ("Transpose (ND, X32) #2", [0.001, 0.002]),
    ("DELEGATE_CALL", [0.03, 0.02]),
    ("Transpose (ND, X32) #1", [0.017, 0.004]), ("Multiply (ND) #1", [0.004, 0.0]),
    ("Convolution (NHWC, F32) IGEMM #1", [0.014, 0.012]), ("Copy (NC, X32) #1", [0.001, 0.001]),
    ("Transpose (ND, X32) #2", [0.005, 0.004]), ("Convolution (NHWC, F32) IGEMM #2", [0.011, 0.009]),
    ("Transpose (ND, X32) #3", [0.002, 0.002]), ("Static Reshape (NC) #1", [0.0, 0.0]),
    ("Softmax (NC, F32) #1", [0.008, 0.003]), ("DELEGATE_CALL", [0.07, 0.05]), ("Method::execute", [0.7, 0.6]),
]  # fmt: skip


def test_executorch_events_are_named_after_the_modules_of_their_kernels():
    named = name_executorch_events(LAYOUT, EVENTS)
    modules = [(module, op) for module, op, _ in named]
    assert modules == [
        ("model.soft_argmax", "arange"),
        (DOWN, "Constant Pad"), (DOWN, "Transpose"), (DOWN, "Convolution"), (DOWN, "Transpose"), ("", "delegate_call"),
        (DOWN, "upsample_nearest2d"),
        # the input transpose opens the delegate: its first compute kernel's module; BN and ReLU have no kernel
        (CONV0, "Transpose"), (CONV0, "Convolution"), (POOL0, "Average Pooling"), (POOL0, "Transpose"),
        ("", "delegate_call"),
        ("model.soft_argmax", "Transpose"), ("model.soft_argmax", "Multiply"), (UP2, "Convolution"), (CAT2, "Copy"),
        (CAT2, "Transpose"), (KP, "Convolution"), (KP, "Transpose"), (SOFTMAX, "Static Reshape"), (SOFTMAX, "Softmax"),
        ("", "delegate_call"),
    ]  # fmt: skip
    # the wrapping OPERATOR_CALL's time for portable ops; a delegate's own time beyond its kernels
    assert named[0][2] == [0.03, 0.02] and named[6][2] == [0.016, 0.006]
    assert named[5][2] == pytest.approx([0.5 - 0.44, 0.44 - 0.42])
    # every call's events add up to the calls and delegate calls ETDump recorded, nothing lost or counted twice
    for call in (0, 1):
        recorded = sum(t[call] for name, t in EVENTS if name in ("OPERATOR_CALL", "DELEGATE_CALL"))
        assert sum(t[call] for _, _, t in named) == pytest.approx(recorded)
    groups = attribute([{f"{m}/{op}#{i}": (op, t[0]) for i, (m, op, t) in enumerate(named)}])["groups"][0]
    assert groups == pytest.approx({
        "anti_alias": 0.02 + 0.01 + 0.4 + 0.01 + 0.016,
        "hourglass": 0.01 + 0.003 + 0.009 + 0.001 + 0.014 + 0.001 + 0.005,
        "heatmap_keypoint": 0.03 + 0.017 + 0.004 + 0.011 + 0.002 + 0.0 + 0.008,
        "other": (0.5 - 0.44) + (0.03 - 0.023) + (0.07 - 0.062),  # what each delegate call took beyond its kernels
    })  # fmt: skip


@pytest.mark.parametrize("runtime, precision", [("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                                                ("openvino", "fp32"), ("openvino", "bf16"),
                                                ("executorch", "fp32"), ("executorch", "int8")])  # fmt: skip
def test_per_op_times_add_up_per_call(runtime, precision, detector, batch, calibration):
    if runtime == "executorch":
        pytest.importorskip("executorch", reason="executorch is an optional extra, not installed here")
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
    # whether OpenVINO reports the decoder's up-sampling as a layer of its own or fuses it depends on
    # the plugin's choices in the process (it did both on one machine): the convolutions are always there
    assert {(r["block"], r["op"]) for r in record.layers} >= {("downblock_1", "conv"), ("upblock_3", "conv")}
    env = record.env
    assert (env["runtime"], env["precision"], env["precision_used"]) == ("openvino", "fp32", "fp32")
    assert env["runtime_version"] == record.runtime["version"]


def test_profile_torch_bf16_uses_eager_hooks(detector):
    record = profile(detector, (1, 3, 64, 64), warmup=1, repeats=3, threads=1, show_progress=False, precision="bf16")
    assert [m["name"] for m in record.modules] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    assert record.env["precision_used"] == "bf16" and record.runtime["runtime"] == "torch"
