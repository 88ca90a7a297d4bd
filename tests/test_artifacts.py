"""export: the timed program written as a shippable file, reloaded and checked, with its manifest."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import compressbench
from compressbench import metrics
from compressbench.artifacts import MANIFEST, check_export_folder
from compressbench.cli import app
from compressbench.errors import CompressbenchError
from compressbench.runtimes import get_runtime
from tests.standins import small_teacher

SIZE = 64
FAST = {"frames": 4, "input_size": SIZE, "repeats": 2, "warmup": 0}


def foreign_frames(count: int = 6) -> torch.Tensor:
    """Frames the project's data module did not draw: smoothed uniform noise from another generator."""
    noise = torch.rand(count, 3, SIZE // 4, SIZE // 4, generator=torch.Generator().manual_seed(1234))
    return torch.nn.functional.interpolate(noise, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def teacher():
    return small_teacher().eval()


@pytest.fixture(scope="module")
def eager(teacher):
    with torch.inference_mode():
        return teacher(foreign_frames())


@pytest.fixture(scope="module")
def ort_export(teacher, tmp_path_factory):
    return compressbench.export(teacher, tmp_path_factory.mktemp("ort") / "teacher-ort", runtime="onnxruntime", **FAST)


def test_the_manifest_describes_what_was_measured_and_the_files(ort_export):
    manifest = json.loads((ort_export.folder / MANIFEST).read_text())
    assert manifest == ort_export.manifest and manifest["format"] == "compressbench-export/1"
    assert [p.name for p in ort_export.files] == ["model.onnx"] and list(manifest["files"]) == ["model.onnx"]
    entry = manifest["files"]["model.onnx"]
    data = ort_export.main_file.read_bytes()
    assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["input"] == {"name": "images", "shape": [1, 3, SIZE, SIZE], "dtype": "float32", "layout": "NCHW",
                                 "channels": "RGB", "range": [0.0, 1.0]}  # fmt: skip
    assert manifest["outputs"] == {"value": [1, 10, 2], "jacobian": [1, 10, 2, 2], "heatmap": [1, 10, 10, 10]}
    run = manifest["runtime"]
    assert (run["runtime"], run["precision_requested"], run["precision_used"]) == ("onnxruntime", "fp32", "fp32")
    assert manifest["machine"]["key"] == compressbench.profiling.machine.this_machine().key
    latency = manifest["latency"]
    assert latency["p10_ms"] <= latency["median_ms"] <= latency["p90_ms"] and latency["speedup_vs_eager_fp32"] > 0
    # the model itself exported in fp32: it agrees with itself, and the reloaded file reproduces it exactly
    assert manifest["fidelity"]["akd_px"] < 0.01 and manifest["fidelity"]["frames"] == 4
    check = manifest["verification"]
    assert check["akd_difference_px"] == 0.0 and check["max_abs_output_difference"] == 0.0
    assert manifest["provenance"]["stages"] == []


def test_the_onnx_file_runs_in_onnx_runtime_alone(ort_export, eager):
    import onnxruntime as ort

    session = ort.InferenceSession(str(ort_export.main_file), providers=["CPUExecutionProvider"])
    value = np.concatenate([session.run(["value"], {"images": f[None].numpy()})[0] for f in foreign_frames()])
    assert float(metrics.akd_px(torch.from_numpy(value), eager["value"], SIZE)) < 0.01


def test_openvino_int8_ir_runs_in_openvino_alone_within_a_pixel(teacher, eager, tmp_path):
    import openvino as ov

    result = compressbench.export(teacher, tmp_path / "exact-int8", "exact", runtime="openvino", precision="int8", **FAST)
    assert [p.name for p in result.files] == ["model.xml", "model.bin"]
    assert result.manifest["runtime"]["precision_used"] == "int8"
    assert result.manifest["runtime"]["load"]["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert [s["method"] for s in result.manifest["provenance"]["stages"]] == ["exact"]
    compiled = ov.Core().compile_model(str(result.main_file), "CPU")
    value = np.concatenate([compiled(f[None].numpy())[compiled.output("value")] for f in foreign_frames()])
    assert 0 < float(metrics.akd_px(torch.from_numpy(value), eager["value"], SIZE)) < 1.0


def test_a_file_that_does_not_reproduce_the_measurement_writes_nothing(teacher, tmp_path, monkeypatch):
    backend = get_runtime("onnxruntime")
    load = type(backend).load_artifact

    def drifting(self, path, threads, precision, outputs):
        runner = load(self, path, threads, precision, outputs)
        return lambda images: {k: v + 0.05 if k == "value" else v for k, v in runner(images).items()}

    monkeypatch.setattr(type(backend), "load_artifact", drifting)
    with pytest.raises(CompressbenchError, match="does not reproduce the measurement.*nothing was written"):
        compressbench.export(teacher, tmp_path / "drift", runtime="onnxruntime", **FAST)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy


def test_an_earlier_export_is_replaced_and_other_folders_are_refused(ort_export, tmp_path):
    check_export_folder(ort_export.folder)  # an earlier export: replaced
    check_export_folder(tmp_path / "new")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(CompressbenchError, match="folder with other files in it"):
        check_export_folder(tmp_path / "busy")
    with pytest.raises(CompressbenchError, match="is a file"):
        check_export_folder(tmp_path / "busy" / "notes.txt")
    with pytest.raises(CompressbenchError, match="does not exist; create it first"):
        check_export_folder(tmp_path / "missing" / "out")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--runtime", "torch"], "export writes openvino, onnxruntime, executorch files"),
        (["--runtime", "tensorrt"], "unknown runtime 'tensorrt'"),
        (["--ratio", "0.5"], "--ratio and --set need --method"),
        (["--method", "prune", "--ratio", "1.5"], "ratio"),
    ],
)
def test_bad_export_arguments_are_one_line_before_any_work(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", "--weights", "random", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()


def test_a_parts_in_onnx_runtime_variant_has_no_single_graph_to_export(ort_variant, tmp_path):
    with pytest.raises(CompressbenchError, match="sessions of their own, not one graph"):
        compressbench.export(ort_variant.module, tmp_path / "parts", runtime="onnxruntime", **FAST)


def doc_snippets() -> dict[str, str]:
    """The python blocks of docs/export.md, keyed by the file each loads."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    return {next(name for name in ("model.xml", "model.onnx", "model.pte") if name in b): b for b in blocks}


@pytest.mark.parametrize("main_file, runtime", [("model.xml", "openvino"), ("model.onnx", "onnxruntime"),
                                                ("model.pte", "executorch")])  # fmt: skip
def test_the_docs_snippets_run_an_export_with_its_runtime_alone(main_file, runtime, teacher, ort_export, tmp_path):
    import re

    if runtime == "executorch":
        pytest.importorskip("executorch", reason="executorch is an optional extra, not installed here")
    snippet = doc_snippets()[main_file]
    folder = ort_export.folder if runtime == "onnxruntime" else compressbench.export(teacher, tmp_path / runtime, runtime=runtime, **FAST).folder
    namespace: dict = {}
    exec(re.sub(r'folder = "[^"]*"', f"folder = {str(folder)!r}", snippet), namespace)  # noqa: S102
    assert tuple(namespace["keypoints"].shape) == (1, 10, 2)
