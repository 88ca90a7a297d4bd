"""``compressbench distill`` through the CLI: a real run, errors as one line, and two torchrun processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from compressbench.api import save
from compressbench.cli import app
from compressbench.models import build_teacher
from compressbench.provenance import load_model
from tests.conftest import REDUCED

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def fast(steps: int = 4) -> list[str]:
    """A tiny run: 64x64 frames, batch 2, a few steps, a two-round comparison on one thread."""
    return ["--student", "erfnet-0.5", "--steps", str(steps), "--batch", "2", "--val-frames", "4", "--val-every", "2",
            "--frames", "2", "--repeats", "2", "--warmup", "0", "--threads", "1", "--input-size", "64"]  # fmt: skip


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_usage_error(result, fragment: str):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "small-teacher.pt"
    save(build_teacher(REDUCED), path)
    return path


@pytest.fixture(scope="module")
def distilled(teacher_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("distill")
    out, checkpoint = folder / "student.pt", folder / "ck.pt"
    result = run("distill", "--teacher", teacher_file, *fast(), "--loss", "l3", "--out", out, "--train-checkpoint", checkpoint, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out, checkpoint


def test_json_record_and_saved_student(distilled):
    record, out, _ = distilled
    assert [row["variant"] for row in record["rows"]] == ["teacher", "erfnet-0.5-l3"]
    assert record["rows"][0]["params"] == 80_928 and record["rows"][1]["akd_px"] > 0
    training = record["training"]
    assert training["steps"] == 4 and [row["step"] for row in training["history"]] == [2, 4]
    assert training["best_val_akd_px"] == min(row["akd_px"] for row in training["history"])
    assert training["options"] == {"student": "erfnet-0.5", "method": None, "width": None, "loss": "l3"}
    assert record["env"]["input_shape"] == [1, 3, 64, 64] and record["out"] == str(out)
    student = load_model(out)
    assert student.predictor.student_name == "erfnet" and student.predictor.width == 0.5
    carried = torch.load(out, weights_only=True)["metadata"]["training"]  # the student says how it was made
    assert carried["settings"]["loss"] == "l3" and carried["settings"]["out"] == str(out)
    assert carried["steps"] == 4 and carried["lr_schedule"] == "cosine" and carried["pool"] == 0


def test_resume_continues_the_checkpoint(distilled, teacher_file, tmp_path):
    _, _, checkpoint = distilled
    result = run("distill", "--teacher", teacher_file, *fast(steps=6), "--loss", "l3", "--resume", checkpoint,
                 "--out", tmp_path / "more.pt", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [row["step"] for row in json.loads(result.stdout)["training"]["history"]] == [2, 4, 6]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--student", "nope"], "unknown student 'nope'; known: edanet, erfnet, esnet, lednet, squeeze-unet"),
        (["--loss", "l9"], "l9"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--init", "svd"], "--init svd applies to a teacher made into a student with --method"),
        (["--init", "sideways"], "sideways"),
        (["--patience", "-1"], "--patience must be zero or more"),
    ],
)
def test_bad_options_exit_2_with_one_line(teacher_file, tmp_path, args, fragment):
    assert_usage_error(run("distill", "--teacher", teacher_file, *fast(), *args, "--out", tmp_path / "s.pt"), fragment)
    assert not (tmp_path / "s.pt").exists()


def test_resume_of_another_students_checkpoint_exits_2(distilled, teacher_file, tmp_path):
    _, _, checkpoint = distilled
    result = run("distill", "--teacher", teacher_file, *fast(steps=8), "--student", "esnet-0.5", "--loss", "l3",
                 "--resume", checkpoint, "--out", tmp_path / "s.pt")
    assert_usage_error(result, "student erfnet-0.5 there, esnet-0.5 here")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2(teacher_file, tmp_path):
    assert_usage_error(run("distill", "--teacher", teacher_file, *fast(), "--device", "cuda", "--out", tmp_path / "s.pt"), "CUDA is not available")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_torchrun_processes_train_and_rank0_saves(teacher_file, tmp_path):
    out, checkpoint, report = tmp_path / "ddp.pt", tmp_path / "ck.pt", tmp_path / "report.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "compressbench", "distill", "--teacher", str(teacher_file), *fast(), "--loss", "l3",
               "--out", str(out), "--train-checkpoint", str(checkpoint), "--format", "json", "--output", str(report)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 4 and saved["meta"]["world_size"] == 2 and len(saved["rng"]) == 2
    assert json.loads(report.read_text())["training"]["steps"] == 4
    assert done.stderr.count("step 4/4") == 1  # only rank 0 logs
    student = load_model(out)
    assert student.predictor.student_name == "erfnet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "ddp.pt", "report.json"]


def test_threads_pin_torch_while_training(teacher_file, tmp_path, monkeypatch):
    from compressbench.distillation import train as train_module
    from compressbench.errors import CompressbenchError

    seen = []

    def fake_distill(options, teacher=None):
        seen.append(torch.get_num_threads())
        raise CompressbenchError("stop after checking the threads")

    monkeypatch.setattr(train_module, "distill", fake_distill)
    args = fast()
    args[args.index("--threads") + 1] = "2"
    assert_usage_error(run("distill", "--teacher", teacher_file, *args, "--out", tmp_path / "s.pt"), "stop after checking the threads")
    assert seen == [2]


def test_out_is_required_so_nothing_lands_in_the_current_folder(teacher_file):
    assert_usage_error(run("distill", "--teacher", teacher_file, *fast()), "--out")
