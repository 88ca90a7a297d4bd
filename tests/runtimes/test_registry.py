"""The runtime registry: names, precisions, a runtime that is not installed, and the CLI's answers."""

from __future__ import annotations

import builtins

import pytest
import torch
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.errors import CompressbenchError, UnknownNameError
from compressbench.runtimes import (
    PRECISIONS,
    RUNTIMES,
    RuntimeMissing,
    RuntimeUnavailable,
    check_runtime,
    parse_runtime,
    prepare,
)

cli = CliRunner()


def test_registered_runtimes_and_precisions():
    assert RUNTIMES.names() == ["executorch", "onnxruntime", "openvino", "torch"]
    assert PRECISIONS == ("fp32", "bf16", "int8")


def test_unknown_runtime_lists_the_known_ones():
    with pytest.raises(
        UnknownNameError, match=r"unknown runtime 'tflite'; known: executorch, onnxruntime, openvino, torch"
    ):
        check_runtime("tflite")


@pytest.mark.parametrize("text, precision, expected", [
    ("openvino", None, ("openvino", "fp32")),
    ("openvino:bf16", None, ("openvino", "bf16")),
    ("openvino:bf16", "int8", ("openvino", "int8")),
    ("torch", "bf16", ("torch", "bf16")),
])  # fmt: skip
def test_parse_runtime(text, precision, expected):
    assert parse_runtime(text, precision) == expected


@pytest.mark.parametrize("precision", ["fp16", "int4", "", "FP32"])
def test_bad_precision_is_an_error_naming_the_known_ones(precision):
    with pytest.raises(CompressbenchError, match="known: fp32, bf16, int8"):
        check_runtime("torch", precision or "none")


def test_unknown_calibration_method(detector, batch):
    with pytest.raises(CompressbenchError, match="unknown calibration method 'kl'; known: minmax, percentile, entropy, nncf"):
        prepare("onnxruntime", detector, batch, 1, "int8", calibration_method="kl")


def test_onnxruntime_has_no_bf16(detector, batch):
    with pytest.raises(RuntimeUnavailable, match="onnxruntime has no bf16"):
        prepare("onnxruntime", detector, batch, 1, "bf16")


def test_a_missing_runtime_is_a_one_line_user_error(monkeypatch, detector, batch):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(RuntimeMissing, match="^openvino is not installed; run `make install`"):
        prepare("openvino", detector, batch, 1)
    assert issubclass(RuntimeMissing, CompressbenchError)  # the CLI turns it into one line, exit 2


@pytest.mark.parametrize("command", [
    ["profile", "--weights", "random", "--input-size", "64", "--runtime", "executorch"],
    ["compress", "--method", "exact", "--weights", "random", "--input-size", "64", "--runtime", "executorch"],
])  # fmt: skip
def test_cli_executorch_not_installed_answers_one_line_exit_2(command, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_executorch(name, *args, **kwargs):  # as on a machine without the optional extra
        if name == "executorch" or name.startswith("executorch."):
            raise ImportError("No module named 'executorch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_executorch)
    result = cli.invoke(app, command)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: executorch is not installed"), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command, fragment", [
    (["profile", "--runtime", "tensorrt"], "unknown runtime 'tensorrt'; known: executorch, onnxruntime, openvino, torch"),
    (["profile", "--precision", "fp16"], "unknown precision 'fp16'; known: fp32, bf16, int8"),
    (["compress", "--method", "exact", "--precision", "int4"], "unknown precision 'int4'"),
])  # fmt: skip
def test_cli_rejects_bad_runtime_and_precision_before_work(command, fragment):
    result = cli.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and fragment in result.stderr


def test_torch_int8_of_an_already_int8_model_is_unavailable(detector, batch, calibration):
    int8 = prepare("torch", detector, batch, 1, "int8", calibration)
    with pytest.raises(RuntimeUnavailable, match="already quantized"):
        prepare("torch", int8.module, batch, 1, "int8", calibration)
    assert isinstance(int8.module, torch.nn.Module)
