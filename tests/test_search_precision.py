"""The search's precision pass on the reduced detector at 64 px: which candidates it looks at, the mix
it finds for one that int8 pushes out of the bound, and that mix as a candidate of the search."""

from __future__ import annotations

import pytest
import torch

from compressbench import metrics
from compressbench.compression.sensitivity import reference_keypoints
from compressbench.data.holdout import FrameSource
from compressbench.provenance import derive
from compressbench.runtimes import prepare
from compressbench.search_precision import Contender, ValidationFrames, precision_pass, skip_reason
from compressbench.variant_search import Candidate, search
from tests.compression.test_recover import calibrated_teacher
from tests.standins import context
from tests.test_variant_search import options, stage

SIZE = 64
RUNTIME = "onnxruntime"


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    pytest.importorskip("onnxruntime")
    return calibrated_teacher()


@pytest.fixture(scope="module")
def frames() -> ValidationFrames:
    source = FrameSource(eval_count=4, size=SIZE)
    return ValidationFrames(source.calibration(8), source.calibration(8))


def int8_akd(model, teacher, frames) -> float:
    prepared = prepare(RUNTIME, model, frames.images[:1].contiguous(), 1, "int8", frames.calibration_images)
    with torch.inference_mode():
        value = prepared.outputs(frames.images)["value"]
    return float(metrics.akd_px(value, reference_keypoints(teacher, frames.images), SIZE))


@pytest.fixture(scope="module")
def teacher_int8_akd(teacher, frames) -> float:
    akd = int8_akd(teacher, teacher, frames)
    assert akd > 0.01  # int8 moves the keypoints: there is something for the pass to win back
    return akd


@pytest.mark.parametrize(
    ("runtime", "precision", "methods", "reason"),
    [
        ("openvino", "int8", ("prune", "mixed"), None),
        ("onnxruntime", "int8", ("mixed",), None),
        ("openvino", "int8", ("prune", "recover"), "mixed is not among --methods"),
        ("openvino", "fp32", ("mixed",), "openvino fp32 cannot keep layers float"),
        ("torch", "int8", ("mixed",), "torch int8 cannot keep layers float"),
        ("executorch", "int8", ("mixed",), "executorch int8 cannot keep layers float"),
    ],
)
def test_the_pass_runs_only_where_int8_can_keep_layers_float(runtime, precision, methods, reason):
    got = skip_reason(runtime, precision, methods)
    assert got == reason if reason is None else got.startswith(reason)


def test_the_first_candidate_within_the_bound_in_int8_ends_the_pass(teacher, frames, teacher_int8_akd):
    contenders = [Contender("slow", teacher, 2.0), Contender("fast", teacher, 1.0)]
    done = precision_pass(contenders, teacher, RUNTIME, 2 * teacher_int8_akd, frames, threads=1, show_progress=False)
    assert done.found == []
    assert [entry["candidate"] for entry in done.log] == ["fast"]  # fastest first; "slow" cannot beat it
    assert "within" in done.log[0]["precision"]
    assert done.seconds > 0


def test_a_candidate_int8_pushes_out_gets_the_fewest_float_layers_that_bring_it_back(teacher, frames, teacher_int8_akd):
    bound = teacher_int8_akd / 2
    contenders = [Contender("a", teacher, 1.0), Contender("b", teacher, 2.0)]
    done = precision_pass(contenders, teacher, RUNTIME, bound, frames, threads=1, show_progress=False, analyses=1)
    (found,) = done.found
    assert (found.parent, found.name) == ("a", "a+mixed")
    assert found.int8_val_akd_px == pytest.approx(teacher_int8_akd)
    assert found.mixed_val_akd_px <= bound < found.int8_val_akd_px
    layers = found.stage["options"]["float_layers"].split(",")
    names = dict(teacher.named_modules())
    assert layers and all(name in names for name in layers)
    assert len(layers) < len([m for m in teacher.modules() if isinstance(m, torch.nn.Conv2d)])  # not simply all float
    assert "not analysed" in done.log[-1]["precision"] and done.log[-1]["candidate"] == "b"
    # the stage, applied as the search applies it, runs as the pass measured it
    mixed = derive(teacher, ["mixed"], [found.stage["options"]], context())[-1].module
    assert int8_akd(mixed, teacher, frames) == pytest.approx(found.mixed_val_akd_px, abs=1e-6)


def test_no_mix_is_reported_when_even_every_layer_float_is_outside(teacher, frames):
    pruned = derive(teacher, ["prune"], [{"ratio": 0.6}], context())[-1].module  # far from the teacher, untrained
    done = precision_pass([Contender("p", pruned, 1.0)], teacher, RUNTIME, 1e-3, frames, threads=1, show_progress=False)
    assert done.found == []
    assert "no mix within 0.001 px" in done.log[0]["precision"]


def test_the_search_times_the_mix_beside_its_parent_and_records_what_ran(tmp_path, teacher, teacher_int8_akd):
    bound = teacher_int8_akd / 2  # exact is within it in fp32 (folding is exact), outside in int8
    record, _ = search(
        teacher, options(tmp_path, runtime=RUNTIME, precision="int8", max_akd=bound, threads=1), None,
        [Candidate("exact", (stage("exact"),))],
    )  # fmt: skip
    rows = {row["variant"]: row for row in record["rows"]}
    assert {"teacher", "exact", "exact+mixed"} <= set(rows)
    assert any(entry.get("precision", "").endswith("a candidate of its own") for entry in record["log"])
    assert record["budget_split"]["precision_s"] > 0
    ran = record["runs"]["exact+mixed"]["float_layers"]
    assert ran and not record["runs"]["exact"].get("float_layers")
    mixed_stage = record["front_chains"].get("exact+mixed", {"stages": [{"method": "mixed"}]})["stages"][-1]
    assert mixed_stage["method"] == "mixed"


def test_without_mixed_in_the_methods_the_search_adds_no_mix(tmp_path, teacher, teacher_int8_akd):
    record, _ = search(
        teacher, options(tmp_path, runtime=RUNTIME, precision="int8", max_akd=teacher_int8_akd / 2, threads=1,
                         methods=("exact",)), None, [Candidate("exact", (stage("exact"),))],
    )  # fmt: skip
    assert {row["variant"] for row in record["rows"]} == {"teacher", "exact"}
    assert record["budget_split"]["precision_s"] == 0
