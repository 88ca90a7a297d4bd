"""The Python API: the README's example runs, any detector-shaped nn.Module works, errors speak Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import compressbench
from compressbench.api import python_names
from compressbench.errors import CompressbenchError
from compressbench.records import ProfileRecord

from .standins import BATCHNORM_PARAMS, FRAME_SIZE, SMALL_PARAMS, small_teacher

QUICK = {"frames": 2, "warmup": 0, "repeats": 2, "input_size": FRAME_SIZE}


def test_readme_python_example_runs(tmp_path, monkeypatch):
    # the README's example, on the reduced teacher and small frames so it runs in seconds
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.search(r"```python\n(import compressbench\n.*?)```", readme, re.S)
    assert example, "the README has a Python example starting with 'import compressbench'"
    code = example.group(1).replace('compressbench.load_model("teacher")', "small_teacher()")
    code = code.replace("ratio=0.5)", "ratio=0.5, **QUICK)")
    assert "small_teacher()" in code and "**QUICK" in code
    monkeypatch.chdir(tmp_path)
    namespace = {"small_teacher": small_teacher, "QUICK": QUICK}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "small.pt").is_file()


class MyDetector(nn.Module):
    """A user's own FOMM-style detector: not registered, returns the teacher's output dict."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = small_teacher()

    def forward(self, x):
        return self.inner(x)


def test_compress_a_users_own_module_with_defaults():
    run = compressbench.compress(MyDetector().eval(), "exact", **QUICK)
    rows = run.record["rows"]
    assert [r["variant"] for r in rows] == ["model", "model+exact"]
    assert rows[0]["params"] == SMALL_PARAMS and rows[0]["akd_px"] == 0.0
    assert rows[1]["akd_px"] < 1e-3 and run.final.stages[0].report["params_after"] == SMALL_PARAMS - BATCHNORM_PARAMS
    assert not run.final.provenance.rebuildable  # a user's module: measured, but not savable


def test_compress_registered_model_merges_method_defaults_and_saves(tmp_path):
    run = compressbench.compress(small_teacher(), "prune", ratio=0.5, name="small", **QUICK)
    assert run.final.stages[0].options == {"ratio": 0.5, "importance": "l2", "global_pruning": False, "iterative": 1}
    path = compressbench.save(run.final, tmp_path / "p.pt")
    loaded = compressbench.load_model(path)
    x = torch.rand(1, 3, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.equal(loaded(x)["value"], run.final.module(x)["value"])


def test_compress_recovers_a_saved_variant_towards_another_teacher(tmp_path):
    from tests.compression.test_recover import SHORT, calibrated_teacher

    teacher = calibrated_teacher()
    pruned = compressbench.compress(teacher, "prune", ratio=0.5, **{**QUICK, "input_size": 64}).final
    path = compressbench.save(pruned, tmp_path / "pruned.pt")
    run = compressbench.compress(
        path, "recover", stage={"recover": SHORT}, teacher=teacher, name="pruned", frames=8, warmup=0, repeats=2,
        input_size=64,
    )  # fmt: skip
    rows = {row["variant"]: row for row in run.record["rows"]}
    assert [row["variant"] for row in run.record["rows"]] == ["teacher", "pruned", "pruned+recover"]
    assert run.record["reference"] == "teacher" and rows["teacher"]["akd_px"] == 0.0
    # every row against the other teacher: the pruned model's loss, and the recovery that buys it back
    assert rows["pruned+recover"]["akd_px"] < rows["pruned"]["akd_px"] and rows["pruned"]["akd_px"] > 1.0
    assert run.final.stages[0].method == "prune" and run.final.stages[-1].method == "recover"


def test_compare_and_evaluate_take_modules():
    teacher = small_teacher()
    record = compressbench.compare(teacher, {"same": small_teacher()}, **QUICK)
    assert [r["variant"] for r in record["rows"]] == ["model", "same"] and record["rows"][1]["akd_px"] == 0.0
    result = compressbench.evaluate(small_teacher(), teacher=teacher, frames=2, input_size=FRAME_SIZE)
    assert result["akd_px"] == 0.0 and result["frames"] == 2


def test_profile_returns_the_typed_record_a_file_holds():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
    record = compressbench.profile(model, (1, 3, 8, 8), warmup=0, repeats=2)
    assert isinstance(record, ProfileRecord)
    assert (record.model, record.params, record.macs_fvcore, record.latency_ms.runs) == ("model", 3 * 2 + 2, 2 * 64 * 3, 2)
    assert ProfileRecord.from_json(record.to_json()) == record


def test_errors_name_python_arguments():
    with pytest.raises(CompressbenchError, match=r"^frames= must be a positive integer, got 0$"):
        compressbench.compress(small_teacher(), "prune", frames=0)
    with pytest.raises(CompressbenchError, match="unknown compression method 'prnue'"):
        compressbench.compress(small_teacher(), "prnue")
    with pytest.raises(CompressbenchError, match="option.s. ratoi apply to none of the methods prune"):
        compressbench.compress(small_teacher(), "prune", ratoi=0.5)
    assert python_names("--max-akd must be positive; try --data DIR") == "max_akd= must be positive; try data= DIR"


def test_search_validates_before_any_training():
    with pytest.raises(CompressbenchError, match=r"^max_akd= must be a positive number of pixels, got 0$"):
        compressbench.search(small_teacher(), max_akd=0)
    with pytest.raises(CompressbenchError, match=r"budget= 'soon' is not a duration"):
        compressbench.search(small_teacher(), budget="soon")
    with pytest.raises(CompressbenchError, match="unknown search option.s. budgett"):
        compressbench.search(small_teacher(), budgett="1m")
