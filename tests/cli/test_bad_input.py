"""Bad input answered as one line and exit code 2, before any long work, with nothing left behind."""

from __future__ import annotations

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
from compressbench.suite import read_suite

from ..standins import SMALL, small_teacher

runner = CliRunner()


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_input_size_that_the_poolings_cannot_take():
    with pytest.raises(CompressbenchError, match=r"--input-size 64 does not fit .* need a multiple of 128 \(e.g. 128 or 256\)"):
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
        ("[measure]\nbatch = 0\n[[variant]]\nname = \"t\"\n", "batch must be positive"),
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
    assert stage["options"] == {"ratio": 0.5, "importance": "l2", "global_pruning": False, "iterative": 1}
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
