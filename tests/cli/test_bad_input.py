"""Bad input answered as one line and exit code 2, before any long work, with nothing left behind."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.compression import apply_chain
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher, check_input_size
from compressbench.models.checkpoint import read_checkpoint
from compressbench.provenance import model_label, read_model_file
from compressbench.records import ComparisonRow, LatencySummary
from compressbench.suite import read_suite

from ..standins import SMALL, small_teacher

runner = CliRunner()


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_input_size_that_the_poolings_cannot_take():
    with pytest.raises(
        CompressbenchError, match=r"--input-size 64 does not fit .* need a multiple of 128 \(e.g. 128 or 256\)"
    ):
        check_input_size(build_teacher(DetectorConfig()), 64)
    check_input_size(small_teacher(), 64)  # 3 poolings after a quarter-scale anti-alias: multiples of 32
    with pytest.raises(CompressbenchError, match="multiple of 32"):
        check_input_size(small_teacher(), 48)
    assert DetectorConfig().input_multiple() == 128 and SMALL.input_multiple() == 32


@pytest.mark.parametrize("command", [["profile"], ["compress", "--method", "exact"]])
def test_commands_refuse_a_small_input_size(command, tmp_path):
    line = one_line_error(runner.invoke(app, [*command, "--input-size", "64", "--output", str(tmp_path / "r.json")]))
    assert "--input-size 64 does not fit" in line and list(tmp_path.iterdir()) == []


def test_distill_refuses_an_unwritable_checkpoint_before_training(tmp_path):
    result = runner.invoke(app, ["distill", "--student", "lednet-0.5", "--steps", "2", "--out", str(tmp_path / "s.pt"),
                                 "--train-checkpoint", str(tmp_path / "missing" / "ck.pt")])  # fmt: skip
    assert "folder" in one_line_error(result) and list(tmp_path.iterdir()) == []


class RunsCode:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pickle_that_would_run_code_is_refused_not_called_corrupt(tmp_path):
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": RunsCode()}, protocol=4))
    with pytest.raises(CompressbenchError, match="could run code, so it is refused"):
        read_checkpoint(raw)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CompressbenchError, match="corrupt or not a PyTorch file"):
        read_checkpoint(garbage)


def test_a_model_file_without_its_state_dict(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"format": "compressbench-model/1", "architecture": "chain", "builder_args": {}}, path)
    with pytest.raises(CompressbenchError, match="without a state dict"):
        read_model_file(path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('measure = 3\n[[variant]]\nname = "t"\n', r"\[measure\] must be a table"),
        ('[measure]\nrepeats = "many"\n[[variant]]\nname = "t"\n', "repeats must be an integer"),
        ('[measure]\nbatch = 0\n[[variant]]\nname = "t"\n', "batch must be positive"),
        ('[[variant]]\nname = "t"\noptions = 0.5\n', "options must be a dict"),
        ('[[variant]]\nname = "t"\nmethod = ["prune"]\n', "method must be a str"),
    ],
)
def test_suite_files_with_wrong_types(tmp_path, toml, message):
    path = tmp_path / "suite.toml"
    path.write_text(toml)
    with pytest.raises(CompressbenchError, match=message):
        read_suite(path)


def test_chain_options_are_merged_with_method_defaults():
    (pruned, stage), = apply_chain(small_teacher(), "prune", [{"ratio": 0.5}])  # fmt: skip
    assert stage["options"] == {"ratio": 0.5, "importance": "l2", "global_pruning": False, "iterative": 1, "ratios": ""}
    with pytest.raises(CompressbenchError, match="one options dict per stage"):
        apply_chain(small_teacher(), "prune,exact", [{}])


def test_registered_names_keep_their_dots():
    assert model_label("squeeze-unet-0.5") == "squeeze-unet-0.5"
    assert model_label("runs/model.pt") == "model"


def test_unreadable_image_is_one_warning_line(tmp_path):
    import numpy as np
    from imageio import v3 as iio

    for index in range(2):
        iio.imwrite(tmp_path / f"{index}.png", np.zeros((8, 8, 3), dtype=np.uint8))
    (tmp_path / "0_bad.png").write_text("not an image")  # read first
    code = "from compressbench.cli import main; main()"
    args = ["evaluate", "--data", str(tmp_path), "--frames", "2", "--format", "json"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "unreadable" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipped unreadable image")
    assert "warnings.warn" not in done.stderr and "Warning:" not in done.stderr


# --- every bad input: one "error:" line, exit code 2, no traceback, nothing written (issue 25 part 4) ---

FAST_PROFILE = ["--weights", "random", "--input-size", "64", "--repeats", "1", "--warmup", "0", "--no-peaks", "--threads", "1"]  # fmt: skip
FAST_COMPRESS = ["--weights", "random", "--input-size", "64", "--frames", "2", "--repeats", "1", "--warmup", "0", "--threads", "1"]  # fmt: skip
NOT_A_PICKLE = b"hello, not a model\n"  # 'h' is a pickle memo lookup: torch's unpickler raised KeyError on it
RESULTS = {  # the smallest results file report reads (its output is what the report cases refuse)
    "format": "compressbench-results/1", "suite": "s.toml", "measure": {}, "stages": {}, "profiles": {}, "overlays": {},
    "env": {}, "comparison": {"rows": [ComparisonRow("teacher", "none", 10, 20, False, 0.5, 0.1, LatencySummary(1.0, 0.9, 1.1)).to_json()],
                              "modules": [], "env": {}},
}  # fmt: skip


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, fragment: str, folder=None) -> str:
    """The one error line (checked to hold ``fragment``); ``folder`` must hold no file afterwards."""
    line = one_line_error(result)
    assert fragment in line, line
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    if folder is not None:  # only the inputs the test made: no output, no temp file
        assert sorted(p.name for p in folder.iterdir() if p.name not in ("inputs", "reduced.yaml")) == []
    return line


@pytest.fixture
def files(tmp_path, reduced_yaml):
    """Inputs of every wrong kind, in tmp_path/inputs; outputs go to tmp_path, which must stay empty."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "garbage.pt").write_bytes(NOT_A_PICKLE)
    (folder / "zip-garbage.pt").write_bytes(b"PK" + bytes(range(200)))
    (folder / "text.json").write_text("not json")
    (folder / "folder.pt").mkdir()
    torch.save(small_teacher().state_dict(), folder / "state.pt")
    return {"dir": folder, "config": reduced_yaml, **{p.stem: p for p in folder.iterdir()}}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["profile", "--model", "{garbage}"], "checkpoint {garbage} is corrupt or not a PyTorch file (unreadable pickle)"),
        (["profile", "--model", "{zip-garbage}"], "is corrupt or not a PyTorch file"),
        (["profile", "--config", "{config}", "--checkpoint", "{garbage}"], "is corrupt or not a PyTorch file"),
        (["profile", "--model", "{state}"], "holds weights only (a FOMM checkpoint or a state dict): load them into a registered model with --model teacher --checkpoint"),
        (["profile", "--model", "{dir}/missing.pt"], "model file {dir}/missing.pt does not exist; give a saved model file"),
        (["profile", "--model", "{folder}"], "model file {folder} is a folder, not a file"),
        (["profile", "--config", "{folder}"], "config file {folder} is a folder, not a file"),
        (["evaluate", "--model", "{garbage}", "--frames", "2"], "is corrupt or not a PyTorch file"),
        (["compress", "--model", "{garbage}", "--method", "exact"], "is corrupt or not a PyTorch file"),
        (["distill", "--teacher", "{garbage}", "--student", "erfnet-0.5", "--out", "{tmp}/s.pt"], "is corrupt or not a PyTorch file"),
        (["teacher", "export", "{garbage}", "--out", "{tmp}/w.pt"], "is corrupt or not a PyTorch file"),
        (["search", "--include", "{garbage}", "--budget", "1m"], "is corrupt or not a PyTorch file"),
    ],
)  # fmt: skip
def test_unreadable_model_files_are_one_line(files, tmp_path, args, fragment):
    names = {key: str(value) for key, value in files.items()} | {"tmp": str(tmp_path)}
    fast = FAST_PROFILE if args[0] == "profile" else []
    refused(invoke(*[a.format(**names) for a in args], *fast), fragment.format(**names), tmp_path)


def test_random_bytes_never_escape_as_an_unpickler_error(tmp_path):
    import random

    from compressbench.models.checkpoint import read_checkpoint

    rng = random.Random(0)
    path = tmp_path / "random.pt"
    for index in range(300):  # 1 in 10 tripped IndexError, KeyError or struct.error before
        head = (b"", b"\x80\x02", b"PK")[index % 3]
        path.write_bytes(head + bytes(rng.randrange(256) for _ in range(rng.choice((1, 10, 100)))))
        with pytest.raises(CompressbenchError, match="checkpoint .* (is corrupt|holds Python objects)"):
            read_checkpoint(path)


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["profile", "--config", "{config}", *FAST_PROFILE, "--runtime", "onnxruntime", "--precision", "bf16"],
         "error: onnxruntime has no bf16 CPU kernels; use openvino or torch for bf16"),
        (["compress", "--config", "{config}", *FAST_COMPRESS, "--method", "exact", "--runtime", "onnxruntime", "--precision", "bf16"],
         "error: teacher, the model every row is compared with, cannot run on onnxruntime bf16: onnxruntime has no bf16"),
        (["search", "--config", "{config}", *FAST_COMPRESS, "--methods", "exact", "--budget", "1m", "--cache", "{tmp}/cache",
          "--runtime", "onnxruntime", "--precision", "bf16"],
         "error: the model cannot run on --runtime onnxruntime --precision bf16, so no candidate can be timed"),
    ],
)  # fmt: skip
def test_a_runtime_that_cannot_run_the_model_is_one_line(reduced_yaml, tmp_path, command, fragment):
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(config=reduced_yaml, tmp=tmp_path) for a in command]
    refused(invoke(*args, "--output", out / "r.json"), fragment, out)


def test_runtime_unavailable_and_out_of_memory_become_their_line():
    from compressbench.cli.app import one_line_failure
    from compressbench.runtimes import RuntimeUnavailable

    unavailable = RuntimeUnavailable("openvino cannot compile the graph")
    assert one_line_failure(unavailable) == "openvino cannot compile the graph"
    oom = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 13194139533312 bytes.")
    assert one_line_failure(oom) == (
        "not enough memory for what was asked (a tensor of 12,288.0 GiB); use a smaller --input-size, --batch or --frames"
    )
    # a bug keeps its traceback
    assert one_line_failure(RuntimeError("a bug")) is None and one_line_failure(KeyError("x")) is None


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("{tmp}/missing/x.md", "folder {tmp}/missing does not exist"),
        ("{tmp}/" + "a" * 300 + ".md", "the file name is longer than the 255 bytes the file system allows"),
        ("{tmp}", "is a directory; give a file name"),
        ("/proc/compressbench-x.md", "cannot write /proc/compressbench-x.md: folder /proc does not take new files"),
    ],
)
def test_unwritable_outputs_fail_before_any_work(tmp_path, output, fragment):
    from pathlib import Path

    if output.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    target = output.format(tmp=tmp_path)
    refused(invoke("models", "--output", target), fragment.format(tmp=tmp_path), tmp_path)


@pytest.mark.parametrize(
    "command",
    [
        ["profile", "--config", "{config}", *FAST_PROFILE, "--roofline", "/proc/r.png"],
        ["compress", "--config", "{config}", *FAST_COMPRESS, "--method", "exact", "--out", "/proc/m.pt"],
        ["compress", "--config", "{config}", *FAST_COMPRESS, "--method", "exact", "--export-onnx", "/proc/m.onnx"],
        ["evaluate", "--config", "{config}", "--weights", "random", "--frames", "2", "--overlays", "/proc/overlays"],
        ["teacher", "train", "--config", "{config}", "--steps", "1", "--out", "/proc/t.pt"],
        ["search", "--config", "{config}", *FAST_COMPRESS, "--budget", "1m", "--cache", "/proc/cache"],
        ["report", "{tmp}/r.json", "-o", "/proc/reports/R.md"],
    ],
)
def test_outputs_the_file_system_refuses_fail_before_any_work(tmp_path, reduced_yaml, command):
    from pathlib import Path

    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    (tmp_path / "r.json").write_text(json.dumps(RESULTS))  # for report: its output is what is refused
    line = one_line_error(invoke(*[a.format(config=reduced_yaml, tmp=tmp_path) for a in command]))
    assert "/proc" in line and ("does not take new files" in line or "cannot create" in line), line


def test_a_device_or_pipe_as_output_is_written_in_place(tmp_path):
    """Not replaced by a plain file (as root, renaming over /dev/null would replace the device)."""
    import os
    import stat

    from compressbench.report import write_atomic

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(pipe, "through the pipe\n")
        assert os.read(reader, 100) == b"through the pipe\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_pipe_given_as_input_is_refused_without_waiting_for_a_writer(tmp_path):
    import os
    import threading

    pipe = tmp_path / "results.json"
    os.mkfifo(pipe)
    outcome = []

    def report():
        outcome.append(invoke("report", pipe, "-o", tmp_path / "R.md"))

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert outcome, "report waited for a writer on the pipe"
    refused(outcome[0], f"compressbench results file {pipe} is not a regular file (a pipe, socket or device)")


BASELINE_ENTRY = {"name": "t", "fingerprint": "f", "params": 1, "samples": {"model_ms": [1.0], "ruler_ms": [1.0]}}


@pytest.mark.parametrize(
    ("baseline", "fragment"),
    [
        ({"entries": [1, 2]}, "entry #1 must be a table, got 1"),
        ({"entries": ["teacher"]}, 'entry #1 must be a table, got "teacher"'),
        ({"entries": [{"name": "t"}]}, "entry 't' is incomplete (no fingerprint, params, samples)"),
        ({"entries": [{**BASELINE_ENTRY, "samples": "lots"}]}, "entry 't': 'samples' must be a table of 'model_ms' and 'ruler_ms'"),
        ({"entries": [{**BASELINE_ENTRY, "params": "many"}]}, "entry 't': 'params' must be an integer"),
        ({"entries": [{**BASELINE_ENTRY, "spec": 5}]}, "entry 't': 'spec' must be a table, got 5"),
        ({"entries": [{**BASELINE_ENTRY, "spec": {"name": "t", "bogus": 1}}]}, "'spec' has unknown key(s) bogus"),
        ({"entries": [{**BASELINE_ENTRY, "runtime": "torch"}]}, "'runtime' must be a table with 'runtime' and 'precision_requested'"),
        ({"settings": "x", "entries": [BASELINE_ENTRY]}, "'settings' must be a table"),
        ({"machine": "x", "entries": [BASELINE_ENTRY]}, "'machine' must be a machine fingerprint table"),
    ],
)  # fmt: skip
def test_baseline_files_of_the_wrong_shape(tmp_path, baseline, fragment):
    from compressbench.regress.baseline import FORMAT

    path = tmp_path / "inputs" / "baseline.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"format": FORMAT, "baselines": [baseline]}))
    before = path.read_text()
    line = refused(invoke("check", "--baseline", path, "--output", tmp_path / "c.json"), fragment, tmp_path)
    assert line.endswith("record it again")
    # baseline --add reads the file it would add to first: the same line, before any measurement, file untouched
    refused(invoke("baseline", "--suite", tmp_path / "no-suite.toml", "--add", "--output", path), fragment, tmp_path)
    assert path.read_text() == before


def test_a_check_that_fails_prints_no_note_before_its_error(tmp_path):
    """The other-machine note waits until every input is known good, so the error is the only line."""
    from compressbench.regress.baseline import FORMAT
    from compressbench.regress.measure import RULER

    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": FORMAT, "baselines": [{"ruler": RULER, "entries": [BASELINE_ENTRY]}]}))
    result = invoke("check", "--baseline", path, "--model", "teacher", "--entry", "nope")
    refused(result, "baseline has no entry 'nope'; entries: t")


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory):
    from compressbench.provenance import derive, save_variant

    from ..standins import context

    folder = tmp_path_factory.mktemp("recover")
    teacher = small_teacher()
    pruned = derive(teacher, ["prune"], [{"ratio": 0.5}], context())[-1]
    save_variant(pruned, folder / "pruned.pt")
    from compressbench.api import save

    save(teacher, folder / "teacher.pt")
    save(teacher, folder / "twin.pt")
    return folder


@pytest.mark.parametrize(
    ("model", "extra", "fragment"),
    [
        ([], ["--method", "recover"], "recover (stage 1 of --method recover) has nothing to recover: it fine-tunes the model towards its teacher, which is the model itself here (no --teacher)"),
        ([], ["--method", "exact,recover"], "recover (stage 2 of --method exact,recover) has nothing to recover"),
        ([], ["--method", "recover,prune"], "no stage before it changes the structure (asym, dsconv, heads, prune, stem); prune first (e.g. --method prune,recover)"),
        ([], ["--method", "prune,quantize,recover"], "comes after quantize: an int8 model has no float weights to train; put recover before quantize"),
        (["--model", "{dir}/pruned.pt"], ["--method", "recover"], "give the model it was made from with --teacher (e.g. --teacher teacher)"),
        (["--model", "{dir}/teacher.pt", "--teacher", "{dir}/twin.pt"], ["--method", "recover"], "the model and --teacher are the same network with the same weights"),
    ],
)  # fmt: skip
def test_a_recover_that_can_change_nothing_is_refused_before_any_work(
    pruned_file, reduced_yaml, tmp_path, model, extra, fragment, monkeypatch
):
    from compressbench.compression import recover

    def no_training(*args, **kwargs):
        raise AssertionError("recover started training")

    monkeypatch.setattr(recover, "finetune", no_training)
    source = [a.format(dir=pruned_file) for a in model] or ["--config", str(reduced_yaml)]
    result = invoke("compress", *source, *FAST_COMPRESS, *extra, "--set", "recover.pool=8", "--set", "recover.batch=4",
                    "--out", tmp_path / "m.pt", "--output", tmp_path / "c.json")  # fmt: skip
    refused(result, fragment, tmp_path)


def test_recover_after_a_structural_stage_or_towards_another_teacher_is_allowed(pruned_file):
    from compressbench.compression.recover import check_recover_can_change
    from compressbench.provenance import load_model

    pruned, teacher = load_model(pruned_file / "pruned.pt"), load_model(pruned_file / "teacher.pt")
    check_recover_can_change(["prune", "recover"], teacher)
    check_recover_can_change(["prune", "recover", "quantize"], teacher)
    check_recover_can_change(["recover"], pruned, teacher, prior_methods=("prune",))
    check_recover_can_change(["recover"], small_teacher(), build_teacher(SMALL))  # other initialisation, other weights
    with pytest.raises(CompressbenchError, match="same network with the same weights"):
        check_recover_can_change(["exact", "recover"], teacher, load_model(pruned_file / "twin.pt"))


def test_a_folder_of_only_unreadable_images_is_the_error_alone(tmp_path, reduced_yaml):
    images = tmp_path / "inputs"
    images.mkdir()
    for index in range(2):
        (images / f"{index}.png").write_text("not an image")
    line = refused(invoke("evaluate", "--config", reduced_yaml, "--weights", "random", "--data", images, "--frames", "2"),
                   f"none of the 2 image(s) in {images} could be read (Could not find a backend")  # fmt: skip
    assert "warning" not in line


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["profile", "--config", "{config}", *FAST_PROFILE, "--roofline", "{tmp}/r.json"], "--roofline {tmp}/r.json is a PNG plot; give a .png file"),
        (["search", "--config", "{config}", *FAST_COMPRESS, "--budget", "1m", "--out", "{tmp}/best.json"], "--out {tmp}/best.json is the saved model (e.g. model.pt)"),
        (["search", "--config", "{config}", *FAST_COMPRESS, "--budget", "1m", "--results", "{tmp}/s.pt"], "--results {tmp}/s.pt is for results (tables or JSON), not a model file"),
        (["distill", "--student", "lednet", "--method", "prune", "--out", "{tmp}/s.pt"], "--student lednet and --method prune both say what the student is"),
    ],
)  # fmt: skip
def test_outputs_and_names_that_contradict_each_other(reduced_yaml, tmp_path, command, fragment):
    args = [a.format(config=reduced_yaml, tmp=tmp_path) for a in command]
    refused(invoke(*args), fragment.format(tmp=tmp_path), tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is there")
def test_recover_on_a_missing_gpu_is_refused_before_the_stages_before_it(reduced_yaml, tmp_path):
    result = invoke("compress", "--config", reduced_yaml, *FAST_COMPRESS, "--method", "prune,recover",
                    "--set", "recover.device=cuda", "--output", tmp_path / "c.json")  # fmt: skip
    refused(result, "recover: device is cuda, but torch sees no CUDA device here; use cpu", tmp_path)
    assert "prune:" not in result.output  # no stage ran


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["profile", "--config", "{config}", *FAST_PROFILE, "--seed", str(10**23)], "--seed must be an integer from 0 to 9223372036854775807"),
        (["evaluate", "--config", "{config}", "--frames", "2", "--seed", "-1"], "--seed must be an integer from 0"),
        (["search", "--config", "{config}", *FAST_COMPRESS, "--budget", "1m", "--warmup", "-1"], "--warmup must be zero or more, got -1"),
        (["search", "--config", "{config}", *FAST_COMPRESS, "--budget", "1m", "--cache", "{config}"], "--cache {config}: cannot create the folder (file exists)"),
        (["report", "{results}", "-o", "{tmp}/R.md", "--akd-budget", "nan"], "--akd-budget must be a positive number of pixels, got nan"),
        (["distill", "--student", "erfnet-0.5", "--out", "{tmp}/s.pt", "--w-keypoints", "-1"], "--w-keypoints must be zero or a positive finite number, got -1.0"),
        (["distill", "--student", "erfnet-0.5", "--out", "{tmp}/s.pt", "--attention-p", "0"], "--attention-p must be positive and finite, got 0.0"),
        (["distill", "--student", "erfnet-0.5", "--out", "{tmp}/s.pt", "--lr", "inf"], "--lr must be positive and finite, got inf"),
        (["teacher", "train", "--config", "{config}", "--out", "{tmp}/t.pt", "--lr", "inf"], "--lr must be positive and finite, got inf"),
        (["teacher", "train", "--config", "{config}", "--out", "{tmp}/t.pt", "--equivariance-value", "-1"], "--equivariance-value is -1.0"),
    ],
)  # fmt: skip
def test_numbers_out_of_range(reduced_yaml, tmp_path, command, fragment):
    results = tmp_path / "inputs" / "r.json"
    results.parent.mkdir()
    results.write_text(json.dumps(RESULTS))
    args = [a.format(config=reduced_yaml, tmp=tmp_path, results=results) for a in command]
    refused(invoke(*args), fragment.format(config=reduced_yaml, tmp=tmp_path), tmp_path)
