"""OpenVINO's own int8 path (NNCF) on the reduced detector: agreement, what ran, size, attribution."""

from __future__ import annotations

import builtins

import pytest
import torch

from compressbench import metrics
from compressbench.errors import CompressbenchError
from compressbench.runtimes import RuntimeUnavailable, prepare
from compressbench.runtimes.attribution import attribute, op_timer
from compressbench.runtimes.onnxruntime_runtime import export_for_runtime
from tests.runtimes.conftest import SIZE

pytest.importorskip("nncf")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def nncf_int8(detector, batch, calibration):
    return prepare("openvino", detector, batch, 1, "int8", calibration, "nncf")


def test_nncf_int8_agrees_with_eager_fp32(nncf_int8, detector, held_out):
    with torch.inference_mode():
        reference = detector(held_out)
    out = nncf_int8.outputs(held_out)
    akd = float(metrics.akd_px(out["value"], reference["value"], SIZE))
    assert 0 < akd < 1.0  # the bound of every int8 path in test_agreement.py
    assert float(metrics.jacobian_error(out["jacobian"], reference["jacobian"])) < 0.05
    assert out["jacobian"].flatten(2).std(dim=2).min() > 0.01  # the pooling stayed in float: no constant


def test_nncf_int8_records_what_ran(nncf_int8):
    record = nncf_int8.record
    assert (record.runtime, record.precision_requested, record.precision_used) == ("openvino", "int8", "int8")
    assert any(note.startswith("int8: NNCF ") for note in record.notes)
    assert not any(note.startswith("QDQ") for note in record.notes)


def test_nncf_int8_ships_int8_weights(nncf_int8, detector, batch):
    import openvino as ov

    from compressbench.runtimes.nncf_int8 import model_bytes

    weights = [op for op in nncf_int8.program.get_ops() if op.get_type_name() == "Constant"]
    assert any(str(op.get_element_type()) == "<Type: 'int8_t'>" for op in weights)
    float_ir = ov.Core().read_model(export_for_runtime(detector, batch[:1]))
    assert nncf_int8.size_bytes == model_bytes(nncf_int8.program) < model_bytes(float_ir)


def test_nncf_int8_per_op_times_add_up(nncf_int8):
    timer = op_timer(nncf_int8)
    for _ in range(5):
        timer()
    attributed = attribute(timer.calls(3))
    for groups, total in zip(attributed["groups"], attributed["totals"]):
        assert sum(groups.values()) == pytest.approx(total)
        assert {"anti_alias", "hourglass", "heatmap_keypoint", "jacobian"} <= set(groups)


def test_nncf_is_for_openvino_only(detector, batch, calibration):
    with pytest.raises(RuntimeUnavailable, match="NNCF quantizes OpenVINO models"):
        prepare("onnxruntime", detector, batch, 1, "int8", calibration, "nncf")


def test_nncf_missing_is_a_one_line_user_error(monkeypatch, detector, batch, calibration):
    real_import = builtins.__import__

    def without_nncf(name, *args, **kwargs):
        if name == "nncf" or name.startswith("nncf."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_nncf)
    with pytest.raises(CompressbenchError, match=r"^nncf is not installed; run `make install`"):
        prepare("openvino", detector, batch, 1, "int8", calibration, "nncf")
