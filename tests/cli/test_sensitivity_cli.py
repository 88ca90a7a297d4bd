"""``compressbench sensitivity``: bad input is one line and exit 2 before any work; a small run
prints the tables and writes the JSON record and the Markdown."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from compressbench.cli import app

runner = CliRunner()
SMALL = ["--input-size", "64", "--frames", "2", "--calibration-frames", "4", "--threads", "1"]


def invoke(*args):
    return runner.invoke(app, ["sensitivity", *[str(a) for a in args]])


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--runtime", "torch"], "--runtime torch: sensitivity runs on openvino or onnxruntime"),
        (["--runtime", "tensorrt"], "unknown runtime 'tensorrt'; known: "),
        (["--max-akd", "0"], "--max-akd must be a positive number of pixels, got 0.0"),
        (["--max-akd", "-0.5"], "--max-akd must be a positive number of pixels, got -0.5"),
        (["--runtime", "onnxruntime", "--float-precision", "bf16"], "--float-precision bf16 needs --runtime openvino"),
        (["--calibration", "kl"], "unknown --calibration 'kl' for openvino; known: minmax, percentile, entropy, nncf"),
        (["--frames", "0"], "--frames must be a positive integer, got 0"),
        (["--output", "record.pt"], "--output record.pt is for results"),
        (["--method", "nope"], "unknown compression method 'nope'"),
        (["--set", "mixed.float_layers=kp"], "--set needs --method"),
        (["--method", "mixed", "--set", "mixed.float_precision=fp16"], "mixed: unknown float_precision 'fp16'"),
    ],
)
def test_bad_input_is_one_line_before_the_model_loads(args, fragment):
    assert fragment in one_line(invoke(*args))


def test_an_unknown_layer_lists_the_known_ones(reduced_yaml):
    line = one_line(invoke("--config", reduced_yaml, "--weights", "random", "--runtime", "onnxruntime", *SMALL,
                           "--layers", "kp,nope"))  # fmt: skip
    assert "unknown layer 'nope'; known layers: predictor.encoder.down_blocks.0.conv," in line and line.endswith("jacobian, down")


def test_a_small_run_prints_the_tables_and_writes_the_record(reduced_yaml, tmp_path):
    record_path, markdown = tmp_path / "sensitivity.json", tmp_path / "sensitivity.md"
    result = invoke("--config", reduced_yaml, "--weights", "random", "--runtime", "onnxruntime", *SMALL,
                    "--layers", "kp,down", "--no-alone", "--no-timing", "--max-akd", "100", "-o", record_path,
                    "--markdown", markdown)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Per-layer int8 sensitivity of teacher" in result.stdout and "Mixed precision within 100 px" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["format"] == "compressbench-sensitivity/1" and [row["layer"] for row in record["layers"]] == ["down", "kp"]
    assert record["mixed"]["within_bound"] and record["mixed"]["float_layers"] == []  # all int8 is within 100 px
    assert markdown.read_text().startswith("### Per-layer int8 sensitivity of teacher")
