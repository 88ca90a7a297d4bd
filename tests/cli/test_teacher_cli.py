"""``compressbench teacher train`` / ``export`` through the CLI, including the error cases."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from compressbench.cli import app

runner = CliRunner()
TINY = ["--block-expansion", "8", "--max-features", "64", "--num-blocks", "3", "--input-size", "64",
        "--batch", "2", "--val-frames", "2", "--val-every", "1", "--lr-schedule", "constant"]


@pytest.fixture(autouse=True)
def _one_thread():  # tiny models: threads only add contention on a shared machine
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run(*args):
    return runner.invoke(app, ["teacher", *[str(a) for a in args]])


def assert_usage_error(result, fragment: str):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "0"], "--steps must be a positive integer, got 0"),
        (["--batch", "-3"], "--batch must be a positive integer, got -3"),
        (["--device", "tpu"], "unknown device 'tpu'; choose cpu or cuda"),
        (["--val-frames", "0"], "--val-frames must be a positive integer"),
        (["--data", "no/such/dir"], "--data no/such/dir is neither 'synthetic' nor an existing folder or video file"),
        (["--resume", "missing.pt"], "--resume missing.pt does not exist"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--lr-schedule", "steps"], "unknown learning-rate schedule 'steps'"),
        (["--steps", "many"], "Invalid value for '--steps'"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, args, fragment):
    assert_usage_error(run("train", "--out", tmp_path / "t.pt", *args), fragment)
    assert not (tmp_path / "t.pt").exists()


def test_cuda_without_cuda_exits_2(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_usage_error(run("train", "--out", tmp_path / "t.pt", "--device", "cuda"), "CUDA is not available")


def test_out_folder_must_exist(tmp_path):
    assert_usage_error(run("train", "--out", tmp_path / "nope" / "t.pt"), "folder")


def test_train_then_resume_then_export(tmp_path):
    out = tmp_path / "t.pt"
    first = run("train", *TINY, "--steps", "1", "--out", out, "--format", "json")
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout)
    assert record["steps"] == 1 and record["best_step"] == 1 and record["checkpoint"] == str(out)
    assert set(record["best"]) == {"loss", "landmark_error_px", "jacobian_error", "heatmap_peak"}
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["command"].startswith("compressbench teacher train --steps 1 --batch 2 ")
    assert "--block-expansion 8" in meta["command"] and "--input-size 64" in meta["command"]

    second = run("train", *TINY, "--steps", "2", "--out", out, "--resume", out, "--format", "json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["steps"] == 2
    resumed_meta = torch.load(out, weights_only=True)["meta"]
    assert resumed_meta["resumed_at"] == [1] and resumed_meta["command"] == meta["command"].replace("--steps 1", "--steps 2")
    assert_usage_error(run("train", *TINY, "--steps", "2", "--out", out, "--resume", out), "already at step 2")

    weights = tmp_path / "w.pt"
    exported = run("export", out, "--out", weights, "--test-frames", "2", "--format", "json")
    assert exported.exit_code == 0, exported.output
    saved = json.loads((tmp_path / "w.json").read_text())
    assert saved == json.loads(exported.stdout)
    assert saved["training"]["steps"] == 2 and saved["test"]["frames"] == 2 and saved["dtype"] == "float16"
    again = run("export", out, "--out", weights, "--test-frames", "2", "--format", "json")
    assert json.loads(again.stdout)["sha256"] == saved["sha256"]  # same checkpoint, same bytes
    state = torch.load(weights, weights_only=True)
    assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())


def test_export_rejects_a_file_that_is_not_a_training_checkpoint(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "bare.pt")
    result = run("export", tmp_path / "bare.pt", "--out", tmp_path / "w.pt")
    assert_usage_error(result, "not a compressbench training checkpoint")
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "w.json").exists()


def test_config_file_and_overrides_pick_the_architecture(reduced_yaml, tmp_path):
    from compressbench.cli.teacher_cmd import _detector_config
    from compressbench.models import DetectorConfig

    assert _detector_config(reduced_yaml, block_expansion=4, max_features=None, num_blocks=None) == DetectorConfig(
        block_expansion=4, max_features=64, num_blocks=3
    )
    (tmp_path / "bad.yaml").write_text("model_params: {}\n")
    assert_usage_error(run("train", "--out", tmp_path / "t.pt", "--config", tmp_path / "bad.yaml"), "kp_detector_params")


def test_threads_pin_torch_while_training(tmp_path, monkeypatch):
    from compressbench.cli import teacher_cmd

    seen = []

    def fake_train(options):
        seen.append(torch.get_num_threads())
        raise teacher_cmd.CompressbenchError("stop after checking the threads")

    monkeypatch.setattr(teacher_cmd, "train_teacher", fake_train)
    assert_usage_error(run("train", "--out", tmp_path / "t.pt", *TINY, "--threads", "2"), "stop after checking the threads")
    assert seen == [2] and torch.get_num_threads() == 1  # pinned inside, restored after
    assert_usage_error(run("train", "--out", tmp_path / "t.pt", "--threads", "0"), "--threads must be a positive integer, got 0")
