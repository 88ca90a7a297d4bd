"""Accuracy-aware int8: the ``mixed`` stage, the float layers the runtimes read back, the per-layer
sensitivity and the greedy mixed precision, on the reduced detector at 64 px."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from compressbench import metrics
from compressbench.compression import get_method
from compressbench.compression.sensitivity import (
    SensitivityRecord,
    analyse_precision,
    check_arguments,
    mixed_precision_stage,
    quantizable_layers,
    units,
)
from compressbench.data import frames_for
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.files import render_json
from compressbench.profiling.machine import this_machine
from compressbench.provenance import derive, load_model, save_variant
from compressbench.runtimes import prepare
from compressbench.runtimes.layers import Int8Plan, plan_of, set_plan, weighted_layers
from tests.compression.swap_helpers import lively_teacher
from tests.standins import context, small_teacher

SIZE = 64
FRAMES = FrameSource(eval_count=4, size=SIZE)
CALIBRATION = 8
LAYERS = [
    "down", "predictor.encoder.down_blocks.0.conv", "predictor.encoder.down_blocks.1.conv",
    "predictor.encoder.down_blocks.2.conv", "predictor.decoder.up_blocks.0.conv", "predictor.decoder.up_blocks.1.conv",
    "predictor.decoder.up_blocks.2.conv", "kp", "jacobian",
]  # fmt: skip


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return lively_teacher().eval()


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """(evaluation, calibration) frames: FRAMES' own, so prepared runs match the analysis."""
    return FRAMES.evaluation().images, FRAMES.calibration(CALIBRATION)


def akd(prepared, images, model) -> float:
    with torch.inference_mode():
        return float(metrics.akd_px(prepared.outputs(images)["value"], model(images)["value"], SIZE))


# -- the mixed stage ------------------------------------------------------------------------------------


def test_the_mixed_stage_round_trips_through_provenance(tmp_path):
    teacher = small_teacher()
    options = get_method("mixed").resolve({"float_layers": "kp, predictor.decoder.up_blocks.2.conv"})
    variant = derive(teacher, ["mixed"], [options], context())[-1]
    assert plan_of(variant.module) == Int8Plan(("kp", "predictor.decoder.up_blocks.2.conv"))
    assert plan_of(teacher) == Int8Plan()  # the input is never changed
    stage = variant.stages[-1]
    assert (stage.method, stage.computes_in_int8, stage.structure) == ("mixed", False, {"float_layers": ["kp", "predictor.decoder.up_blocks.2.conv"]})
    reloaded = load_model(save_variant(variant, tmp_path / "mixed.pt"))
    assert plan_of(reloaded) == plan_of(variant.module)
    with torch.no_grad():  # PyTorch itself computes exactly what it did
        x = torch.rand(1, 3, SIZE, SIZE)
        assert torch.equal(reloaded(x)["value"], teacher(x)["value"])


def test_an_unknown_layer_lists_the_known_ones():
    options = get_method("mixed").resolve({"float_layers": "kp,predictor.nope"})
    with pytest.raises(CompressbenchError) as error:
        derive(small_teacher(), ["mixed"], [options], context())
    message = str(error.value)
    assert message.startswith("mixed: unknown layer 'predictor.nope'; known layers: ")
    assert message.endswith(", ".join(weighted_layers(small_teacher())))
    with pytest.raises(CompressbenchError, match="choose one of: fp32, bf16"):
        get_method("mixed").resolve({"float_precision": "fp16"})


# -- what the runtimes read back ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime, conv", [("onnxruntime", "Conv"), ("openvino", "Convolution")])
def test_a_layer_named_float_runs_float_and_no_other(runtime, conv, model, images):
    evaluation, calibration = images
    plain = prepare(runtime, model, evaluation[:1], 1, "int8", calibration).record
    floated = prepare(runtime, set_plan(copy.deepcopy(model), Int8Plan(("kp",))), evaluation[:1], 1, "int8", calibration).record
    assert (plain.precision_used, plain.float_layers) == ("int8", [])
    assert (floated.precision_used, floated.float_layers) == ("int8", ["kp fp32"])
    assert f"{conv} fp32 x1" in floated.fallback_ops and not any(op.startswith(f"{conv} ") for op in plain.fallback_ops)
    assert "float layers: kp fp32" in floated.summary() and "kept float: kp" in floated.summary()


def test_openvino_runs_the_float_layers_in_bf16_where_the_cpu_has_it(model, images):
    evaluation, calibration = images
    module = set_plan(copy.deepcopy(model), Int8Plan(("kp",), float_precision="bf16"))
    record = prepare("openvino", module, evaluation[:1], 1, "int8", calibration).record
    native = this_machine().has("avx512_bf16", "amx_bf16")
    assert record.precision_used == "int8"
    assert record.float_layers == ["kp bf16" if native else "kp fp32"]
    assert ("float layers asked in bf16 run fp32" in record.summary()) is not native
    ort = prepare("onnxruntime", module, evaluation[:1], 1, "int8", calibration).record
    assert ort.float_layers == ["kp fp32"] and "onnxruntime has no bf16 CPU kernels" in ort.summary()


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_every_layer_float_is_the_float_graph_and_only_one_int8_is_nearly(runtime, model, images):
    evaluation, calibration = images
    fp32 = prepare(runtime, model, evaluation[:1], 1, "fp32").outputs(evaluation)
    every = set_plan(copy.deepcopy(model), Int8Plan(tuple(weighted_layers(model))))
    floated = prepare(runtime, every, evaluation[:1], 1, "int8", calibration)
    assert all(torch.equal(floated.outputs(evaluation)[k], fp32[k]) for k in fp32)  # the Q/DQ pairs are all gone
    assert floated.record.precision_used == "fp32" and len(floated.record.float_layers) == len(LAYERS)
    only = prepare(runtime, set_plan(copy.deepcopy(model), Int8Plan(only=("kp",))), evaluation[:1], 1, "int8", calibration)
    assert [f.split()[0] for f in only.record.float_layers] == [name for name in LAYERS if name != "kp"]


# -- sensitivity and the greedy mix --------------------------------------------------------------------------


def test_the_quantizable_layers_are_the_convolutions_in_graph_order(model):
    assert quantizable_layers(model, torch.rand(1, 3, SIZE, SIZE)) == LAYERS


@pytest.fixture(scope="module")
def analysis(model, images):
    """The ONNX Runtime analysis with a bound between the all-int8 and the fp32 AKD."""
    evaluation, calibration = images
    int8 = akd(prepare("onnxruntime", model, evaluation[:1], 1, "int8", calibration), evaluation, model)
    bound = 0.6 * int8
    record = analyse_precision(model, "onnxruntime", bound, FRAMES, calibration_frames=CALIBRATION, threads=1,
                               warmup=1, repeats=2, show_progress=False)  # fmt: skip
    return record, int8


def test_one_entry_per_layer_with_finite_akds(analysis):
    record, int8 = analysis
    assert [layer.layer for layer in record.layers] == LAYERS
    for layer in record.layers:
        assert math.isfinite(layer.akd_only_int8_px) and math.isfinite(layer.akd_all_but_px)
        assert 0 <= layer.akd_only_int8_px and 0 <= layer.akd_all_but_px
    assert record.akd_int8_px == pytest.approx(int8)  # the same frames, the same ranges
    assert record.akd_fp32_px < 1e-4 < record.akd_int8_px
    jacobian = next(layer for layer in record.layers if layer.layer == "jacobian")
    assert jacobian.akd_all_but_px == record.akd_int8_px  # the jacobian head does not move the keypoints
    assert sum(layer.macs_share for layer in record.layers) <= 1.0


def test_the_greedy_mix_is_within_the_bound_and_reproduces(analysis, model, images):
    record, _ = analysis
    mixed = record.mixed
    assert mixed.within_bound and mixed.akd_px <= mixed.max_akd_px and mixed.float_layers
    adds = [step for step in mixed.steps if step["action"] == "add"]
    assert all(step["akd_px"] > mixed.max_akd_px for step in adds[:-1]) and adds[-1]["akd_px"] <= mixed.max_akd_px
    drops = [step for step in mixed.steps if step["action"] == "drop"]
    assert adds[-1]["kept"] and all(step["kept"] == (step["layer"] in mixed.float_layers) for step in drops)
    assert {layer.layer for layer in record.layers if layer.float_in_mixed} == set(mixed.float_layers)
    assert mixed.stage == {"method": "mixed", "options": {"float_layers": ",".join(mixed.float_layers), "float_precision": "fp32"}}
    # the stage applied to the model runs the same mix: the same AKD, the same layers read back
    evaluation, calibration = images
    variant = derive(model, [mixed.stage["method"]], [mixed.stage["options"]], context())[-1].module
    prepared = prepare("onnxruntime", variant, evaluation[:1], 1, "int8", calibration)
    assert akd(prepared, evaluation, model) == pytest.approx(mixed.akd_px)
    assert [f.split()[0] for f in prepared.record.float_layers] == [n for n in LAYERS if n in mixed.float_layers]
    assert record.runs["mixed"]["float_layers"] == prepared.record.float_layers
    assert set(record.latency_ms) == {"fp32", "int8", "mixed"} and all(v["runs"] == 2 for v in record.latency_ms.values())


def test_the_record_round_trips_as_json(analysis):
    record, _ = analysis
    document = json.loads(render_json(record.to_json()))
    assert document["format"] == "compressbench-sensitivity/1"
    assert SensitivityRecord.from_json(document) == record
    with pytest.raises(CompressbenchError, match="not a compressbench sensitivity record"):
        SensitivityRecord.from_json({**document, "format": "compressbench-profile/1"})
    del document["mixed"]["stage"]
    with pytest.raises(CompressbenchError, match="misses its 'stage' section"):
        SensitivityRecord.from_json(document)


def test_a_bound_no_mix_reaches_says_so_on_openvino(model):
    record = analyse_precision(model, "openvino", 1e-9, FRAMES, layers=["kp", "down"], only_int8=False,
                               calibration_frames=CALIBRATION, threads=1, latency=False, show_progress=False)  # fmt: skip
    assert [layer.layer for layer in record.layers] == ["down", "kp"]
    assert all(layer.akd_only_int8_px is None for layer in record.layers)
    assert not record.mixed.within_bound and record.mixed.stage == {} and record.latency_ms is None
    assert record.mixed.note.startswith("no mix is within 1e-09 px: with every analysed layer float the AKD is")
    assert record.mixed.note.endswith(f"the model in fp32 on openvino gives {record.akd_fp32_px:.4f} px itself")


def test_the_stage_for_the_search(model):
    stage = mixed_precision_stage(model, "onnxruntime", 1e3, FRAMES, layers=["kp"], calibration_frames=CALIBRATION, threads=1)
    assert stage == {"method": "mixed", "options": {"float_layers": "", "float_precision": "fp32"}}  # all int8 is within
    assert mixed_precision_stage(model, "onnxruntime", 1e-9, FRAMES, layers=["kp"], calibration_frames=CALIBRATION,
                                 threads=1) is None  # fmt: skip


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("torch", 1.0), "--runtime torch: sensitivity runs on openvino or onnxruntime"),
        (("nope", 1.0), "unknown runtime 'nope'; known: "),
        (("onnxruntime", 0.0), "--max-akd must be a positive number of pixels, got 0.0"),
        (("onnxruntime", -1.0), "--max-akd must be a positive number of pixels, got -1.0"),
        (("onnxruntime", float("nan")), "--max-akd must be a positive number of pixels, got nan"),
        (("onnxruntime", 1.0, "nncf"), "unknown --calibration 'nncf' for onnxruntime; known: minmax, percentile, entropy"),
        (("onnxruntime", 1.0, None, "bf16"), "--float-precision bf16 needs --runtime openvino"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(args, fragment):
    with pytest.raises(CompressbenchError) as error:
        check_arguments(*args)
    assert fragment in str(error.value)


def test_layers_that_are_not_quantizable_are_refused_and_blocks_are_units(model):
    example = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(CompressbenchError, match="unknown layer 'kpp'; known layers: predictor.encoder"):
        units(model, example, ["kpp"])
    with pytest.raises(CompressbenchError, match="softmax holds no convolution of the exported graph; quantizable layers: down, "):
        units(model, example, ["softmax"])
    with pytest.raises(CompressbenchError, match="predictor.decoder.up_blocks.0.conv lies inside predictor.decoder; name one"):
        units(model, example, ["predictor.decoder", "predictor.decoder.up_blocks.0.conv"])
    assert units(model, example, ["kp", "predictor.decoder", "down"]) == ["down", "predictor.decoder", "kp"]


def test_frames_never_overlap():
    """Calibration frames are the training split, evaluation frames the test split."""
    evaluation = FRAMES.evaluation().images
    calibration = FRAMES.calibration(CALIBRATION)
    assert torch.equal(evaluation, frames_for("synthetic", 4, split="test", seed=0, size=SIZE).images)
    assert not any(torch.equal(c, e) for c in calibration for e in evaluation)
