import math

import pytest
import torch

from compressbench.comparison import ROW_KEYS, compare
from compressbench.comparison import table as compare_module
from compressbench.comparison.table import RUNTIME_BURST
from compressbench.errors import CompressbenchError
from compressbench.records import check_comparison
from compressbench.runtimes import RuntimeUnavailable

from ..standins import BATCHNORM_PARAMS, FRAME_SIZE, SMALL_PARAMS

FAST = {"warmup": 0, "repeats": 3, "show_progress": False, "threads": 1}


@pytest.fixture(scope="module")
def record(teacher, copy_variant, int8_variant, frames):
    return compare(teacher, [copy_variant, int8_variant], frames, batch=2, **FAST)


def rows_by_name(record):
    return {row["variant"]: row for row in record["rows"]}


def test_record_schema(record):
    assert set(record) == {"format", "rows", "modules", "runs", "env", "notes", "health"}
    assert record["format"] == "compressbench-comparison/2"
    check_comparison(record, "record")  # what reading it back checks
    assert {"healthy", "warnings", "checks"} <= set(record["health"])
    assert set(record["env"]["machine"]) >= {"cpu_model", "features", "cores", "key", "label"}
    assert [row["variant"] for row in record["rows"]] == ["teacher", "copy", "int8"]
    for row in record["rows"]:
        assert tuple(row) == ROW_KEYS
    assert [row["method"] for row in record["rows"]] == ["none", "exact", "quantize"]
    env = record["env"]
    assert (env["batch"], env["threads"], env["runtime"], env["eval_frames"]) == (2, 1, "torch", 3)
    assert env["input_shape"] == [2, 3, FRAME_SIZE, FRAME_SIZE]
    assert {"torch", "cpu", "date", "warmup", "repeats"} <= set(env)


def test_identical_copy_agrees_exactly_and_times_positive(record):
    rows = rows_by_name(record)
    for name in ("teacher", "copy"):
        assert rows[name]["akd_px"] == 0.0
        assert rows[name]["jacobian_error"] == 0.0
    assert rows["teacher"]["speedup"] == 1.0
    for row in record["rows"]:
        assert row["latency_p10"] <= row["latency_ms"] <= row["latency_p90"] and row["latency_iqr"] >= 0
        assert row["latency_runs"] == record["env"]["repeats"] * record["env"]["burst"]  # the whole summary: runs too
        assert math.isfinite(row["speedup"]) and row["speedup"] > 0
        assert row["speedup"] == pytest.approx(rows["teacher"]["latency_ms"] / row["latency_ms"])
        assert row["peak_mem_mb"] > 0


def test_static_measures_of_known_models(record):
    rows = rows_by_name(record)
    assert rows["teacher"]["params"] == rows["copy"]["params"] == SMALL_PARAMS
    assert rows["teacher"]["size_mb"] == rows["copy"]["size_mb"]
    assert rows["teacher"]["macs"] == rows["copy"]["macs"] > 0
    assert rows["teacher"]["macs_int8"] is False


def test_int8_row_carries_the_float_macs_and_counts_packed_weights(record):
    rows = rows_by_name(record)
    int8 = rows["int8"]
    assert int8["macs_int8"] is True
    assert int8["macs"] == rows["teacher"]["macs"]
    macs_note, ran = int8["note"].split("; ", 1)
    assert macs_note == "MACs of the float model before quantization (stages: none), run in int8"
    assert ran.startswith("torch ran int8 (asked fp32)")  # read back: the module computes in int8
    assert int8["params"] == SMALL_PARAMS - BATCHNORM_PARAMS
    assert int8["size_mb"] < rows["teacher"]["size_mb"]
    assert int8["akd_px"] > 0  # quantization moves the keypoints a little
    assert any(note.startswith("int8: MACs of the float model") for note in record["notes"])


def test_per_module_table_side_by_side(record):
    modules = record["modules"]
    assert [m["module"] for m in modules] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian", "total"]
    for entry in modules[:-1]:
        for name in ("teacher", "copy", "int8"):
            assert entry[f"{name}_ms"] > 0
            assert entry[f"{name}_share"] == pytest.approx(entry[f"{name}_ms"] / modules[-1][f"{name}_ms"])
    rows = rows_by_name(record)
    for name in ("teacher", "copy", "int8"):
        assert modules[-1][f"{name}_ms"] == rows[name]["latency_ms"]
        assert modules[-1][f"{name}_share"] == 1.0


def test_a_row_the_runtime_cannot_take_gets_a_note(teacher, copy_variant, frames, monkeypatch):
    real = compare_module.prepare

    def picky(runtime, module, *args):
        if module is copy_variant.module:
            raise RuntimeUnavailable("cannot run on onnxruntime: unsupported op")
        return real(runtime, module, *args)

    monkeypatch.setattr(compare_module, "prepare", picky)
    record = compare(teacher, [copy_variant], frames[:1], breakdown=False, **FAST)
    rows = rows_by_name(record)
    assert rows["copy"]["latency_ms"] is None and rows["copy"]["speedup"] is None
    assert rows["copy"]["note"] == "cannot run on onnxruntime: unsupported op"
    assert rows["copy"]["akd_px"] == 0.0  # still measured
    assert rows["teacher"]["latency_ms"] > 0
    assert record["modules"] == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"runtime": "tensorrt"}, "known: executorch, onnxruntime, openvino, torch"),
        ({"precision": "fp16"}, "unknown precision 'fp16'; known: fp32, bf16, int8"),
        ({"repeats": 0}, "repeats and batch must be positive"),
        ({"batch": 0}, "repeats and batch must be positive"),
    ],
)
def test_bad_arguments(teacher, frames, kwargs, message):
    with pytest.raises(CompressbenchError, match=message):
        compare(teacher, [], frames, show_progress=False, **kwargs)


def test_duplicate_names_and_no_frames(teacher, copy_variant, frames):
    with pytest.raises(CompressbenchError, match="repeated: copy"):
        compare(teacher, [copy_variant, copy_variant], frames, show_progress=False)
    with pytest.raises(CompressbenchError, match="at least one evaluation frame"):
        compare(teacher, [copy_variant], torch.zeros(0, 3, 8, 8), show_progress=False)


def test_onnxruntime_rows(teacher, copy_variant, int8_variant, ort_variant, frames):
    record = compare(
        teacher, [copy_variant, int8_variant, ort_variant], frames[:1], breakdown=False, runtime="onnxruntime", **FAST
    )
    rows = rows_by_name(record)
    assert record["env"]["runtime"] == "onnxruntime"
    assert rows["teacher"]["latency_ms"] > 0 and rows["copy"]["latency_ms"] > 0 and rows["copy"]["note"] is None
    # torch int8 modules do not export: a note, no latency, the rest still measured
    assert rows["int8"]["latency_ms"] is None and "ONNX exporter does not support" in rows["int8"]["note"]
    assert rows["int8"]["params"] == SMALL_PARAMS - BATCHNORM_PARAMS
    # a variant whose part already runs in ONNX Runtime is timed as it is, and says so
    assert rows["ort"]["latency_ms"] > 0 and "timed as saved" in rows["ort"]["note"]
    assert rows["ort"]["macs"] == rows["teacher"]["macs"] and rows["ort"]["macs_int8"] is True


def test_onnxruntime_breakdown_is_measured_in_torch(teacher, copy_variant, frames):
    record = compare(teacher, [copy_variant], frames[:1], runtime="onnxruntime", **FAST)
    total = record["modules"][-1]
    assert total["module"] == "total" and total["teacher_ms"] > 0
    assert total["teacher_ms"] != record["rows"][0]["latency_ms"]  # the torch forward's median, not ORT's
    assert record["env"]["breakdown_runtime"] == "torch"
    assert record["env"]["burst"] == RUNTIME_BURST  # eager beside another runtime: turns of 1 untimed + 4 timed


def test_eager_alone_is_timed_one_call_per_turn(teacher, copy_variant, frames):
    record = compare(teacher, [copy_variant], frames[:1], breakdown=False, **FAST)
    assert record["env"]["burst"] == 1


def test_rows_on_openvino_bf16_name_what_ran(teacher, copy_variant, int8_variant, frames):
    record = compare(
        teacher, [copy_variant, int8_variant], frames, breakdown=False, runtime="openvino", precision="bf16", **FAST
    )
    env = record["env"]
    assert (env["runtime"], env["precision"]) == ("openvino", "bf16") and env["runtime_version"]
    rows = rows_by_name(record)
    # fidelity is the runtime's outputs against the eager fp32 teacher: bf16 is close, not exact
    assert 0 < rows["teacher"]["akd_px"] < 0.5 and rows["teacher"]["precision"] in ("bf16", "fp32")
    assert rows["teacher"]["speedup"] == 1.0 and rows["teacher"]["speedup_vs_eager_fp32"] > 0
    assert record["runs"]["teacher"]["runtime"] == "openvino"
    # a PyTorch int8 variant does not export: a note, no latency, no run record
    assert rows["int8"]["latency_ms"] is None and "cannot export" in rows["int8"]["note"]
    assert "int8" not in record["runs"]


def test_runtime_string_may_carry_the_precision(teacher, frames):
    record = compare(teacher, [], frames[:1], breakdown=False, runtime="onnxruntime:fp32", **FAST)
    assert (record["env"]["runtime"], record["env"]["precision"]) == ("onnxruntime", "fp32")
    assert record["rows"][0]["akd_px"] < 1e-3
