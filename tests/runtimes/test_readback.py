"""Run records say what ran, read back from each runtime after it compiled the model, or say unknown."""

from __future__ import annotations

import pytest
import torch

from compressbench.profiling.machine import this_machine
from compressbench.runtimes import prepare
from compressbench.runtimes.base import MIXED, UNKNOWN, RunRecord, observed_precision


def is_conv(op: str) -> bool:
    return op == "Conv"


def test_the_precision_used_is_the_one_most_convolutions_ran_in():
    counts = {("Conv", "int8"): 3, ("Conv", "fp32"): 1, ("Resize", "fp32"): 2, ("Add", "int8"): 1}
    assert observed_precision(counts, "int8", is_conv) == ("int8", ["Conv fp32 x1", "Resize fp32 x2"])
    # asked bf16, every op ran fp32: the record says fp32, and every op is a fallback
    assert observed_precision({("Conv", "fp32"): 2, ("Softmax", "fp32"): 1}, "bf16", is_conv) == (
        "fp32",
        ["Conv fp32 x2", "Softmax fp32 x1"],
    )


def test_a_split_or_a_silent_runtime_is_mixed_or_unknown_never_the_request():
    assert observed_precision({("Conv", "int8"): 2, ("Conv", "fp32"): 2}, "int8", is_conv)[0] == MIXED
    assert observed_precision({("Softmax", "fp32"): 1}, "fp32", is_conv) == (UNKNOWN, [])
    assert observed_precision({}, "int8", is_conv) == (UNKNOWN, [UNKNOWN])


def test_an_unknown_record_says_so_in_its_note():
    record = RunRecord("onnxruntime", "1.0", "int8", UNKNOWN, 2, [UNKNOWN])
    assert record.summary() == "onnxruntime: precision used unknown (asked int8; not read back); ops not in int8: unknown"
    assert RunRecord("openvino", "1.0", "bf16", "fp32", 2).summary() == "openvino ran fp32 (asked bf16)"
    assert RunRecord("torch", "2.13", "fp32", "fp32", 2).summary() is None


def test_torch_reads_autocast_and_the_fx_int8_model_back(detector, batch, calibration):
    fp32 = prepare("torch", detector, batch, 1, "fp32").record
    assert (fp32.precision_used, fp32.fallback_ops, fp32.source) == ("fp32", [], "torch dispatch trace of one call")
    bf16 = prepare("torch", detector, batch, 1, "bf16").record
    # CPU autocast ran the softmax and reductions in bf16 too; only the input padding stayed fp32
    assert (bf16.precision_used, bf16.fallback_ops) == ("bf16", ["pad fp32 x1"])
    int8 = prepare("torch", detector, batch, 1, "int8", calibration).record
    assert int8.precision_used == "int8"
    # the FX int8 model: its two float convolutions (the down projection and the keypoint head),
    # the decoder's upsampling and concatenations, and the soft-argmax ran in fp32
    assert int8.fallback_ops == [
        "cat fp32 x3", "conv2d fp32 x2", "div fp32 x1", "mul fp32 x2", "pad fp32 x1", "softmax fp32 x1",
        "stack fp32 x1", "sum fp32 x2", "upsample_nearest2d fp32 x4",
    ]  # fmt: skip


def test_onnxruntime_reads_its_profile(detector, batch, calibration):
    record = prepare("onnxruntime", detector, batch, 1, "int8", calibration).record
    assert (record.precision_used, record.source) == ("int8", "onnxruntime profile of one call")
    assert record.fallback_ops and all(op.split()[1] == "fp32" for op in record.fallback_ops)
    assert not any(op.startswith(("Conv ", "QLinearConv ")) for op in record.fallback_ops)


def test_openvino_bf16_says_what_this_cpu_ran(detector, batch):
    record = prepare("openvino", detector, batch, 1, "bf16").record
    native = this_machine().has("avx512_bf16", "amx_bf16")
    assert record.precision_used == ("bf16" if native else "fp32")
    assert record.source.startswith("openvino runtime model")
    if not native:
        assert record.summary().startswith("openvino ran fp32 (asked bf16)")


def test_parts_in_onnx_runtime_sessions_are_unknown_to_a_torch_trace(ort_variant):
    batch = torch.rand(1, 3, 64, 64)
    record = prepare("torch", ort_variant.module, batch, 1, "fp32").record
    assert (record.precision_used, record.fallback_ops, record.source) == (UNKNOWN, [UNKNOWN], UNKNOWN)
    assert "precision used unknown" in record.summary()


def test_executorch_reads_its_lowered_program(detector, batch, calibration):
    pytest.importorskip("executorch", reason="executorch is an optional extra, not installed here")
    fp32 = prepare("executorch", detector, batch, 1, "fp32").record
    assert (fp32.precision_used, fp32.fallback_ops) == ("fp32", [])
    int8 = prepare("executorch", detector, batch, 1, "int8", calibration).record
    assert int8.precision_used == "int8" and int8.source.startswith("executorch lowered program")
    assert not any(op.startswith("convolution ") for op in int8.fallback_ops)  # every convolution ran int8


def test_openvino_names_the_kernels_its_convolutions_ran_on(detector, batch):
    record = prepare("openvino", detector, batch, 1, "fp32").record
    assert record.kernels and all(k.rsplit(" x", 1)[1].isdigit() for k in record.kernels)
    expected = "avx512" if this_machine().has("avx512f") and not this_machine().isa_cap else "avx2"
    assert any(expected in k for k in record.kernels), record.kernels


CAPPED_CHILD = """
import json, sys
from tests.compression.swap_helpers import lively_teacher
import torch
from compressbench.runtimes import prepare
record = prepare("openvino", lively_teacher().eval(), torch.rand(1, 3, 64, 64), 1, "int8", torch.rand(4, 3, 64, 64)).record
print(json.dumps(record.to_dict()))
"""


def test_an_isa_cap_reaches_openvino_s_convolutions_and_the_record_says_what_ignored_it():
    """oneDNN reads the cap once per process, so a child runs under it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    if not this_machine().has("avx2"):
        pytest.skip("needs an x86 CPU with AVX2")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", CAPPED_CHILD], env=env, cwd=root, capture_output=True, text=True, check=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["isa_cap"] == "AVX2"
    assert record["kernels"] and not any("avx512" in k or "amx" in k for k in record["kernels"]), record["kernels"]
    # whatever ran above the cap is listed, and only kernels whose names say so
    assert all(("avx512" in k or "amx" in k) for k in record["kernels_above_cap"])
    if record["kernels_above_cap"]:
        assert "OpenVINO's own kernels ignore ONEDNN_MAX_CPU_ISA in release builds" in record["notes"]
