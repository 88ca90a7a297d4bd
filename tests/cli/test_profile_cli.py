"""``compressbench profile`` and ``models`` through the CLI, including every error case."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.records import PROFILE_FORMAT, ProfileRecord, read_profile

runner = CliRunner()
FAST = ["--weights", "random", "--input-size", "64", "--repeats", "2", "--warmup", "0"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_usage_error(result, fragment: str):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]
    assert "Traceback" not in result.output


def test_profile_json_contract(reduced_yaml):
    result = run("profile", "--config", reduced_yaml, *FAST, "--format", "json")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    # exactly the library's record: the command adds no keys of its own
    assert list(rec) == ["format", *ProfileRecord.__dataclass_fields__] and rec["format"] == PROFILE_FORMAT
    assert rec["model"] == "teacher" and rec["input_size"] == 64
    assert [m["name"] for m in rec["modules"]] == ["anti_alias", "hourglass", "heatmap_keypoint", "jacobian"]
    for key in ("layers_sum_ms", "modules_sum_ms", "end_to_end_ms", "gap_pct"):
        assert isinstance(rec["attribution"][key], float)
    assert {"block", "op", "latency_ms"} <= set(rec["layers"][0])
    assert {"name", "input_shape", "output_shape", "params", "macs"} <= set(rec["blocks"][0])


@pytest.mark.parametrize("fmt, marker", [("md", "### Per-module latency (ms)"), ("csv", "table,module"), ("table", "upblock_1")])
def test_profile_formats_to_file(tmp_path, reduced_yaml, fmt, marker):
    out = tmp_path / f"profile.{fmt}"
    result = run("profile", "--config", reduced_yaml, *FAST, "--format", fmt, "--output", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert marker in text and "downblock_1" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_profile_written_as_json_reads_back(tmp_path, reduced_yaml):
    out = tmp_path / "profile.json"
    assert run("profile", "--config", reduced_yaml, *FAST, "--format", "json", "--output", out).exit_code == 0
    record = read_profile(out)
    assert (record.model, record.input_shape, record.latency_ms.runs) == ("teacher", [1, 3, 64, 64], 2)


def test_models_lists_teacher_with_exact_params():
    result = run("models", "--format", "json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)["models"]}
    assert rows["teacher"]["params"] == 14_215_368


def _evil_checkpoint(path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"kp_detector": Payload()}, path)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "nope"], "unknown model 'nope'; known:"),
        (["--repeats", "0"], "--repeats must be a positive integer"),
        (["--batch", "-1"], "--batch must be a positive integer"),
        (["--threads", "0"], "--threads must be a positive integer"),
        (["--warmup", "-1"], "--warmup must be zero or more"),
        (["--format", "xml"], "unknown format 'xml'"),
        (["--weights", "imagenet"], "unknown weights 'imagenet'"),
        (["--checkpoint", "/no/such/file.pt"], "does not exist"),
        (["--config", "/no/such/config.yaml"], "does not exist"),
        (["--output", "/no/such/dir/out.json"], "folder /no/such/dir does not exist"),
        (["--bogus"], "No such option"),
    ],
)
def test_profile_usage_errors(args, fragment):
    assert_usage_error(run("profile", *args), fragment)


def test_file_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage")
    assert_usage_error(run("profile", "--checkpoint", corrupt), "corrupt or not a PyTorch file")
    evil = tmp_path / "evil.pt"
    _evil_checkpoint(evil)
    assert_usage_error(run("profile", "--checkpoint", evil), "could run code, so it is refused")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model_params: {kp_detector_params: [")
    assert_usage_error(run("profile", "--config", bad_yaml), "not valid YAML")
    wrong = tmp_path / "wrong.pt"
    torch.save({"kp_detector": {"kp.weight": torch.zeros(1)}}, wrong)
    assert_usage_error(run("profile", "--checkpoint", wrong), "does not fit the model")


def test_failed_run_leaves_no_output_file(tmp_path):
    out = tmp_path / "out.json"
    result = run("profile", "--model", "nope", "--output", out)
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_works():
    done = subprocess.run([sys.executable, "-m", "compressbench", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "profile" in done.stdout


def test_profile_efficiency_health_and_roofline(reduced_yaml, tmp_path):
    result = run("profile", "--config", reduced_yaml, *FAST, "--threads", "1", "--format", "json", "--roofline", tmp_path / "roof.png")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert {"healthy", "warnings", "checks"} <= set(rec["health"])
    assert rec["efficiency"]["peaks"]["threads"] == 1 and rec["efficiency"]["why_not_faster"]
    conv = next(layer for layer in rec["layers"] if layer["kind"] == "3x3 conv")
    assert conv["macs"] > 0 and conv["bound"] in ("compute", "memory") and conv["pct_of_peak"] > 0
    assert conv["gmacs_per_s"] == conv["macs"] / (conv["latency_ms"] * 1e6)
    assert (tmp_path / "roof.png").is_file() and rec["env"]["machine"]["threads"] == 1
    assert f"wrote {tmp_path / 'roof.png'}" in result.stderr and "roofline_png" not in rec  # said, not added to the record
    bare = json.loads(run("profile", "--config", reduced_yaml, *FAST, "--no-peaks", "--format", "json").stdout)
    assert bare["efficiency"]["peaks"] is None and all(layer["pct_of_peak"] is None for layer in bare["layers"])
