"""``--runtime`` / ``--precision`` through the CLI: the record names what ran, and stdout stays JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from compressbench.cli import app

FAST = ["--weights", "random", "--input-size", "64", "--repeats", "2", "--warmup", "0", "--format", "json"]


def test_profile_on_onnxruntime_int8_is_clean_json(reduced_yaml):
    # ONNX Runtime's calibrators print progress on stdout; none of it may reach the JSON
    result = CliRunner().invoke(
        app, ["profile", "--config", str(reduced_yaml), *FAST, "--runtime", "onnxruntime", "--precision", "int8"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    env = record["env"]
    assert (env["runtime"], env["precision"], env["precision_used"]) == ("onnxruntime", "int8", "int8")
    assert record["runtime"]["fallback_ops"] and "omp_wait_policy" in env
    assert [m["name"] for m in record["modules"]][:4] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]


def test_compress_on_openvino_bf16_names_the_runtime(reduced_yaml):
    args = ["compress", "--method", "exact", "--config", str(reduced_yaml), "--frames", "2", *FAST]
    result = CliRunner().invoke(app, [*args, "--runtime", "openvino", "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["env"]["runtime"], record["env"]["precision"]) == ("openvino", "bf16")
    assert set(record["runs"]) == {row["variant"] for row in record["rows"]}
    assert all(run["runtime"] == "openvino" for run in record["runs"].values())
