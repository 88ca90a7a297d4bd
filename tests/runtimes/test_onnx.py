"""ONNX export of detectors and ONNX Runtime execution."""

from __future__ import annotations

import copy

import onnx
import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.errors import CompressbenchError
from compressbench.provenance import derive
from compressbench.runtimes.onnx import DETECTOR_OUTPUTS, OnnxModule, OnnxRunner, export_onnx, export_onnx_bytes
from tests.compression.swap_helpers import frames, lively_teacher

SIZE = 64
ATOL = 1e-4


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def exported(teacher, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "teacher.onnx"
    return export_onnx(teacher, path, frames(1, SIZE, seed=0))


def test_export_writes_a_valid_graph_with_detector_outputs(exported):
    graph = onnx.load(str(exported))
    onnx.checker.check_model(graph)
    assert [o.name for o in graph.graph.output] == list(DETECTOR_OUTPUTS)
    assert [i.name for i in graph.graph.input] == ["images"]
    assert graph.opset_import[0].version >= 17


@pytest.mark.parametrize("batch", [1, 3])  # exported with batch 1, the batch axis is dynamic
def test_runner_reproduces_the_model(teacher, exported, batch):
    images = frames(batch, SIZE, seed=7)
    runner = OnnxRunner(exported, threads=1)
    got = runner(images)
    with torch.no_grad():
        want = teacher(images)
    assert list(got) == list(DETECTOR_OUTPUTS)
    for key in DETECTOR_OUTPUTS:
        assert got[key].shape == want[key].shape
        assert torch.allclose(got[key], want[key], atol=ATOL), key


def test_runner_accepts_bytes_and_reports_threads(teacher):
    runner = OnnxRunner(export_onnx_bytes(teacher, frames(1, SIZE)), threads=2)
    assert runner.threads == 2
    assert runner(frames(1, SIZE))["heatmap"].shape == (1, 10, 10, 10)  # 16x16 features, 7x7 valid conv


def test_export_never_touches_the_callers_model(teacher):
    # The legacy exporter restores a wrapper's training flag recursively, which once switched the
    # wrapped detector to training mode (its BatchNorms then used batch statistics); export works
    # on a private eval copy instead.
    model = copy.deepcopy(teacher).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner = OnnxRunner(export_onnx_bytes(model, frames(2, SIZE)))
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    images = frames(1, SIZE, seed=3)
    with torch.no_grad():
        assert torch.allclose(runner(images)["value"], model(images)["value"], atol=ATOL)


def test_a_part_exports_with_one_output(teacher):
    features = torch.rand(2, 11, 16, 16)
    module = OnnxModule(export_onnx_bytes(teacher.kp, features))
    with torch.no_grad():
        assert torch.allclose(module(features), teacher.kp(features), atol=ATOL)


def test_fx_quantized_variant_cannot_be_exported(teacher, tmp_path):
    context = CompressionContext(calibration_frames=lambda n: frames(n, SIZE), show_progress=False)
    options = get_method("quantize").resolve({"backend": "fx", "parts": "kp", "calib": 1})
    variant = derive(teacher, "quantize", [options], context)[-1]
    with pytest.raises(CompressbenchError, match=r"kp\.0 is a PyTorch int8 module .*backend=fx"):
        export_onnx(variant.module, tmp_path / "fx.onnx", frames(1, SIZE))
    assert not (tmp_path / "fx.onnx").exists()


def test_onnx_part_cannot_be_exported_again(teacher):
    wrapped = copy.deepcopy(teacher)
    wrapped.kp = OnnxModule(export_onnx_bytes(teacher.kp, torch.rand(1, 11, 16, 16)))
    with pytest.raises(CompressbenchError, match="kp already runs in ONNX Runtime"):
        export_onnx_bytes(wrapped, frames(1, SIZE))


def test_onnx_module_round_trips_state_and_copies(teacher):
    features = torch.rand(1, 11, 16, 16)
    module = OnnxModule(export_onnx_bytes(teacher.kp, features))
    module(features)  # creates a session, which must not block copying
    clone = copy.deepcopy(module)
    empty = OnnxModule.empty(module.onnx_bytes.numel())
    empty.load_state_dict(module.state_dict())
    assert module.onnx_bytes.dtype == torch.uint8
    assert torch.equal(clone(features), module(features)) and torch.equal(empty(features), module(features))


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(CompressbenchError, match="does not exist"):
        OnnxRunner(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(CompressbenchError, match="ONNX Runtime cannot load"):
        OnnxRunner(tmp_path / "junk.onnx")
    with pytest.raises(CompressbenchError, match="threads must be positive"):
        OnnxRunner(b"", threads=0)


def test_opset_below_17_is_refused(teacher):
    with pytest.raises(CompressbenchError, match="opset must be >= 17"):
        export_onnx_bytes(teacher, frames(1, SIZE), opset=13)
