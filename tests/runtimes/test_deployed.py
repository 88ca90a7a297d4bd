"""Deployed files as models: an export folder, a bare .onnx or .xml, measured in the file's runtime."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import compressbench
from compressbench.cli import app
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import count_params, onnx_weight_count, size_mb
from compressbench.provenance import load_model, provenance_of
from compressbench.runtimes.deployed import DeployedModel
from tests.standins import small_teacher

SIZE = 64
FAST = {"frames": 4, "input_size": SIZE, "repeats": 2, "warmup": 0}


@pytest.fixture(scope="module")
def teacher():
    return small_teacher().eval()


@pytest.fixture(scope="module")
def exports(teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("deployed")
    return {
        "onnxruntime": compressbench.export(teacher, root / "ort", runtime="onnxruntime", **FAST),
        "openvino": compressbench.export(teacher, root / "ov", "exact", runtime="openvino", precision="int8", **FAST),
    }


@pytest.fixture(scope="module")
def frames():
    return torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))


def test_an_export_folder_and_its_bare_file_are_the_same_model(exports, teacher, frames):
    folder = exports["onnxruntime"].folder
    with torch.inference_mode():
        reference = teacher(frames)
    for source in (folder, folder / "model.onnx"):
        model = load_model(source)
        assert isinstance(model, DeployedModel)
        assert (model.runtime, model.input_shape, model.outputs) == ("onnxruntime", [1, 3, SIZE, SIZE],
                                                                     ["value", "jacobian", "heatmap"])  # fmt: skip
        out = model(frames)  # three frames through a file compiled for batch 1 (its shape is dynamic: any)
        torch.testing.assert_close(out["value"], reference["value"], atol=1e-4, rtol=0)
        assert provenance_of(source, model).base.known is False  # a file is not rebuilt from a base


def test_counts_come_from_the_export_or_from_the_file(exports, teacher):
    folder = exports["onnxruntime"].folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["params"] == count_params(teacher)
    assert count_params(load_model(folder)) == count_params(teacher)
    # a bare file: the weights its convolutions take, as the graph holds them (the exporter folded
    # BatchNorm into them and keeps the anti-alias blur kernel as a weight: 171 more than PyTorch counts)
    bare = count_params(load_model(folder / "model.onnx"))
    assert bare == onnx_weight_count((folder / "model.onnx").read_bytes()) == count_params(teacher) + 171
    onnx_bytes = (folder / "model.onnx").stat().st_size
    assert size_mb(load_model(folder / "model.onnx")) == pytest.approx(onnx_bytes / 1e6)
    ir = exports["openvino"].folder
    # a bare IR: the constants its convolutions take through the QDQ conversions, bias included
    assert count_params(load_model(ir / "model.xml")) == exports["openvino"].manifest["counts"]["params"]
    assert size_mb(load_model(ir)) == pytest.approx(((ir / "model.xml").stat().st_size + (ir / "model.bin").stat().st_size) / 1e6)


def test_a_deployed_file_is_profiled_in_its_own_runtime(exports):
    folder = exports["openvino"].folder
    record = compressbench.profile(folder, repeats=3, warmup=1)  # its input shape from the file
    assert (record.env["runtime"], record.env["precision_used"]) == ("openvino", "int8")
    assert record.params == exports["openvino"].manifest["counts"]["params"]
    assert record.macs_fvcore == exports["openvino"].manifest["counts"]["macs"]
    assert record.attribution.get("modules_sum_ms", 0) > 0  # OpenVINO's own per-op times, mapped onto modules


def test_the_cli_profiles_an_ir_and_refuses_another_runtime(exports):
    xml = exports["openvino"].folder / "model.xml"
    result = CliRunner().invoke(app, ["profile", "--model", str(xml), "--input-size", str(SIZE), "-r", "2",
                                      "--warmup", "0", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["env"]["runtime"] == "openvino"
    result = CliRunner().invoke(app, ["profile", "--model", str(xml), "--input-size", str(SIZE), "--runtime", "onnxruntime"])
    assert result.exit_code == 2
    assert "model.xml runs on openvino; measure it with --runtime openvino" in result.stderr


def test_compare_times_a_deployed_file_against_the_eager_teacher(exports, teacher):
    deployed = load_model(exports["onnxruntime"].folder)
    record = compressbench.compare(teacher, {"deployed": deployed}, frames=4, input_size=SIZE, repeats=2, warmup=0)
    row = record["rows"][1]
    assert row["variant"] == "deployed" and row["akd_px"] < 0.01 and row["speedup_vs_eager_fp32"] > 0
    assert record["runs"]["deployed"]["runtime"] == "onnxruntime"
    assert "the deployed file model.onnx, as it is" in row["note"]


def test_a_deployed_file_is_not_compressed_further(exports):
    with pytest.raises(CompressbenchError, match="is a deployed file: it is measured as it is"):
        compressbench.compress(exports["onnxruntime"].folder, "exact", frames=4, input_size=SIZE, repeats=1, warmup=0)


def foreign_onnx(tmp_path, channels: int, outputs: str) -> str:
    class Classifier(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    path = tmp_path / f"foreign-{channels}.onnx"
    torch.onnx.export(Classifier(), (torch.rand(1, channels, 8, 8),), str(path), input_names=["x"],
                      output_names=[outputs], dynamo=False)  # fmt: skip
    return str(path)


def test_a_foreign_or_corrupt_graph_is_one_line(tmp_path):
    with pytest.raises(CompressbenchError, match="has outputs logits; a keypoint detector's are value, jacobian, heatmap"):
        DeployedModel(foreign_onnx(tmp_path, 3, "logits"))
    with pytest.raises(CompressbenchError, match=r"takes input \[1, 4, 8, 8\]; a keypoint detector takes \(N, 3, S, S\)"):
        DeployedModel(foreign_onnx(tmp_path, 4, "value"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(CompressbenchError, match="ONNX Runtime cannot load the graph"):
        DeployedModel(corrupt)
    bad = tmp_path / "bad.xml"
    bad.write_text("<net>")
    with pytest.raises(CompressbenchError, match="OpenVINO cannot read"):
        DeployedModel(bad)
    with pytest.raises(CompressbenchError, match="carries its own weights"):
        load_model(corrupt, config=tmp_path / "x.yaml")


def test_evaluate_scores_a_deployed_file_against_its_source(teacher, tmp_path):
    export = compressbench.export(teacher, tmp_path / "ort256", runtime="onnxruntime", frames=2, repeats=1, warmup=0)
    result = CliRunner().invoke(app, ["evaluate", "--model", str(export.main_file), "-n", "2", "--against", "ground-truth",
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    deployed = json.loads(result.stdout)
    reference = compressbench.evaluate(teacher, against="ground-truth", frames=2)
    assert deployed["landmark_error_px"] == pytest.approx(reference["landmark_error_px"], abs=1e-3)
    assert deployed["model"] == "model"  # labelled by the file stem, as any model file
