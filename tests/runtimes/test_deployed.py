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


def test_a_bare_graph_counts_the_macs_of_its_convolutions_as_fvcore_does(exports, teacher, tmp_path):
    import openvino as ov
    from fvcore.nn import FlopCountAnalysis

    from compressbench.profiling.counting import count_macs
    from compressbench.runtimes.openvino_runtime import read_graph

    example = torch.rand(1, 3, SIZE, SIZE)
    analysis = FlopCountAnalysis(teacher, (example,))
    analysis.unsupported_ops_warnings(False)
    by_operator = analysis.by_operator()
    onnx_file = exports["onnxruntime"].folder / "model.onnx"
    xml = tmp_path / "float.xml"  # the float IR of the same graph, as the openvino runtime writes one
    ov.save_model(read_graph(ov.Core(), onnx_file.read_bytes(), example), str(xml), compress_to_fp16=False)
    for bare in (onnx_file, xml):
        model = load_model(bare)
        macs = count_macs(model, example)
        assert model.recorded_counts()["macs_counter"] == f"{bare.suffix} graph: convolutions and matrix products"
        # the convolutions' multiply-accumulates, exactly as fvcore counts them on the PyTorch module
        assert macs == by_operator["conv"]
        # what fvcore counts besides: BatchNorm (2 per element), folded into the convolutions by the
        # exporter, and nearest up-sampling (1 per output element), a copy in the graph
        assert count_macs(teacher, example) - macs == by_operator["batch_norm"] + by_operator["upsample_nearest2d"]
    # an export folder keeps the count fvcore made of the variant at export
    assert count_macs(load_model(exports["onnxruntime"].folder), example) == count_macs(teacher, example)


def test_a_bare_pte_counts_the_constants_of_its_program(teacher, tmp_path):
    pytest.importorskip("executorch")
    from compressbench.runtimes.executorch_runtime import ExecuTorchRuntime

    # int8 (XNNPACK's quantizer): int8 weights in quantized tensor values, and a copy of the blur
    # kernel the lowering leaves in the program that no instruction reads (not counted)
    calibration = torch.rand(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    prepared = ExecuTorchRuntime().prepare(teacher, calibration[:1], 1, "int8", calibration=calibration)
    (tmp_path / "model.pte").write_bytes(prepared.graph)
    bare = load_model(tmp_path / "model.pte")
    assert bare.manifest is None and bare.runtime == "executorch"
    # the XNNPACK subgraphs' weights and biases (BatchNorm folded in, the blur kernel kept), as the
    # ONNX graph of the same detector holds them
    onnx_graph = compressbench.runtimes.onnxruntime_runtime.export_for_runtime(teacher, torch.rand(1, 3, SIZE, SIZE))
    assert count_params(bare) == onnx_weight_count(onnx_graph) == count_params(teacher) + 171
    assert bare.recorded_counts()["macs"] is None  # a program's MACs: from its export folder's manifest
    record = compressbench.profile(tmp_path / "model.pte", repeats=2, warmup=0)  # end to end: no lowered program to name ops by
    assert (record.params, record.macs_fvcore, record.env["runtime"]) == (count_params(bare), None, "executorch")
    assert "unavailable" in record.attribution


GATE_SETTINGS = "[tool.compressbench]\ninput_size = 256\nrepeats = 3\nwarmup = 0\nthreads = 1\nbootstrap = 200\n"


def test_the_gate_records_and_checks_a_deployed_file(exports, tmp_path, monkeypatch):
    from compressbench.models import DetectorConfig, build_teacher

    torch.manual_seed(1)
    wider = build_teacher(DetectorConfig(block_expansion=12, max_features=64, num_blocks=3)).eval()
    other = compressbench.export(wider, tmp_path / "wider", runtime="onnxruntime", **FAST).main_file
    bare = exports["onnxruntime"].folder / "model.onnx"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(GATE_SETTINGS)  # input_size 256: a file is measured at its own 64
    (tmp_path / "suite.toml").write_text(f'[[variant]]\nname = "deployed"\nmodel = "{bare}"\n')
    cli = CliRunner()
    recorded = cli.invoke(app, ["baseline", "suite.toml", "-o", "b.json", "--force"])
    assert recorded.exit_code == 0, recorded.output
    entry = json.loads((tmp_path / "b.json").read_text())["baselines"][0]["entries"][0]
    assert entry["runtime"]["runtime"] == "onnxruntime" and entry["spec"]["model"] == str(bare)
    assert (entry["params"], entry["macs"]) == (count_params(load_model(bare)), load_model(bare).recorded_counts()["macs"])
    same = cli.invoke(app, ["check", "--baseline", "b.json", "--latency", "advisory", "--format", "json"])
    assert same.exit_code == 0, same.output  # rebuilt from the entry's spec: the file itself
    counts = json.loads(same.stdout)["results"][0]["counts"]
    assert counts["status"] == "pass"
    assert (counts["params"], counts["macs"]) == (counts["baseline_params"], counts["baseline_macs"]) == (entry["params"], entry["macs"])
    changed = cli.invoke(app, ["check", "--baseline", "b.json", "--model", str(other), "--latency", "advisory", "--format", "json"])
    assert changed.exit_code == 1, changed.output
    counts = json.loads(changed.stdout)["results"][0]["counts"]
    assert counts["status"] == "regression" and "params" in counts["reason"] and counts["params"] > counts["baseline_params"]
    ir = exports["openvino"].folder / "model.xml"
    refused = cli.invoke(app, ["check", "--baseline", "b.json", "--model", str(ir)])
    assert refused.exit_code == 2 and refused.stderr == (
        "error: baseline entry 'deployed' was measured on onnxruntime and model runs on openvino; "
        "check it against an entry of a file that runs there\n"
    )


def test_baseline_takes_deployed_files_with_model(exports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(GATE_SETTINGS)
    folder = exports["openvino"].folder  # an int8 IR export: its counts and precision from the manifest
    cli = CliRunner()
    recorded = cli.invoke(app, ["baseline", "--model", str(folder), "-o", "b.json", "--force", "--format", "json"])
    assert recorded.exit_code == 0, recorded.output
    entry = json.loads((tmp_path / "b.json").read_text())["baselines"][0]["entries"][0]
    assert entry["name"] == "ov" and (entry["runtime"]["runtime"], entry["runtime"]["precision_requested"]) == ("openvino", "int8")
    assert (entry["params"], entry["macs"]) == (exports["openvino"].manifest["counts"]["params"], exports["openvino"].manifest["counts"]["macs"])
    checked = cli.invoke(app, ["check", "--baseline", "b.json", "--latency", "advisory", "--format", "json"])
    assert checked.exit_code == 0, checked.output
    both = cli.invoke(app, ["baseline", "suite.toml", "--model", str(folder), "-o", "c.json"])
    assert both.exit_code == 2 and "give a suite (with --only) or --model, not both" in both.stderr
    missing = cli.invoke(app, ["baseline", "--model", "nope.onnx", "-o", "c.json"])
    assert missing.exit_code == 2 and "model file nope.onnx does not exist" in missing.stderr and not (tmp_path / "c.json").exists()
    (tmp_path / "compress.toml").write_text(f'[[variant]]\nname = "x"\nmodel = "{folder}"\nmethod = "exact"\n')
    compressed = cli.invoke(app, ["baseline", "compress.toml", "-o", "c.json"])
    assert compressed.exit_code == 2 and compressed.stderr.endswith(
        "is a deployed file, measured as it is; drop method (compress the model it was exported from)\n"
    )
