"""``compressbench compress`` through the CLI: the JSON record, --out round trips, every error case."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.comparison import ROW_KEYS

runner = CliRunner()
FAST = [
    "--weights",
    "random",
    "--input-size",
    "64",
    "--frames",
    "2",
    "--repeats",
    "2",
    "--warmup",
    "0",
    "--threads",
    "1",
]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_usage_error(result, fragment: str):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def saved(tmp_path_factory, reduced_yaml_module):
    """One real run: prune 0.5 on the reduced teacher, saved with --out, JSON on stdout."""
    folder = tmp_path_factory.mktemp("compress")
    out = folder / "pruned.pt"
    result = run(
        "compress",
        "--config",
        reduced_yaml_module,
        *FAST,
        "--method",
        "prune",
        "--ratio",
        "0.5",
        "--out",
        out,
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


@pytest.fixture(scope="module")
def reduced_yaml_module(tmp_path_factory):
    from tests.conftest import REDUCED_YAML

    path = tmp_path_factory.mktemp("config") / "reduced.yaml"
    path.write_text(REDUCED_YAML)
    return path


def test_json_record(saved):
    record, _ = saved
    assert record["chain"] == ["prune"] and record["model"] == "teacher"
    assert [row["variant"] for row in record["rows"]] == ["teacher", "teacher+prune"]
    assert all(tuple(row) == ROW_KEYS for row in record["rows"])
    assert record["rows"][0]["params"] == 80_928 and record["rows"][1]["params"] < 80_928
    assert record["rows"][0]["speedup"] == 1.0 and record["rows"][1]["speedup"] > 0
    assert record["stages"][0]["options"] == {"ratio": 0.5, "importance": "l2", "global_pruning": False, "iterative": 1, "ratios": ""}
    assert record["env"]["eval_frames"] == 2 and record["env"]["input_shape"] == [1, 3, 64, 64]
    assert [m["module"] for m in record["modules"]][-1] == "total"


def test_out_writes_model_and_sidecar_that_load_back(saved):
    record, out = saved
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["model_file"] == "pruned.pt" and sidecar["method"] == "prune"
    assert sidecar["row"] == record["rows"][-1]
    assert sidecar["stages"][0]["options"]["ratio"] == 0.5
    assert not list(out.parent.glob(".*.tmp"))
    result = run("profile", "--model", out, "--input-size", "64", "--repeats", "2", "--warmup", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == record["rows"][-1]["params"]


def test_a_saved_variant_compresses_further_and_keeps_its_history(saved, tmp_path):
    _, out = saved
    again = tmp_path / "again.pt"
    result = run("compress", "--model", out, *FAST[2:], "--method", "exact", "--out", again, "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["rows"][0]["variant"] == "pruned" and record["rows"][1]["akd_px"] < 1e-3
    assert [s["method"] for s in record["prior_stages"]] == ["prune"]
    chain = json.loads(again.with_name("again.pt.json").read_text())["stages"]
    assert [stage["method"] for stage in chain] == ["prune", "exact"]


def test_markdown_sections(reduced_yaml, tmp_path):
    target = tmp_path / "report.md"
    result = run("compress", "--config", reduced_yaml, *FAST, "--method", "exact", "--format", "md", "--output", target)
    assert result.exit_code == 0, result.output
    text = target.read_text()
    for title in ("### Comparison", "### Per-module latency, side by side", "### Stage 1: exact"):
        assert title in text
    assert "teacher+exact" in text and "options: fold_bn=True, anti_alias=True" in text


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--method", "prune", "--ratio", "1.5"], "prune: ratio must be strictly between 0 and 1"),
        (["--method", "nosuch"], "unknown compression method 'nosuch'; known: asym, dsconv, exact"),
        (["--method", " , "], "empty method chain"),
        (["--method", "prune", "--set", "nosuch.ratio=0.3"], "--set names 'nosuch'"),
        (["--method", "prune", "--set", "ratio0.3"], "--set expects STAGE.OPTION=VALUE"),
        (["--method", "prune", "--rank", "4"], "rank apply to none of the methods prune"),
        (["--method", "prune", "--runtime", "tflite"], "unknown runtime 'tflite'"),
        (["--method", "prune", "--frames", "0"], "--frames must be a positive integer"),
        (["--method", "prune", "--data", "no/such/folder"], "--data no/such/folder does not exist"),
        (["--method", "prune", "--max-akd", "0"], "--max-akd must be a positive number of pixels, got 0"),
        (["--method", "prune,recover", "--set", "recover.loss=l9"], "recover: unknown loss 'l9'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(reduced_yaml_module, tmp_path, args, fragment):
    out = tmp_path / "v.pt"
    result = run(
        "compress",
        "--config",
        reduced_yaml_module,
        *FAST,
        *args,
        "--out",
        out,
        "--output",
        tmp_path / "r.json",
        "--format",
        "json",
    )
    assert_usage_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag, name", [("--out", "x.pt"), ("--output", "x.json"), ("--export-onnx", "x.onnx")])
def test_unwritable_destinations_fail_before_work(reduced_yaml_module, tmp_path, flag, name):
    result = run(
        "compress", "--config", reduced_yaml_module, *FAST, "--method", "prune", flag, tmp_path / "missing" / name
    )
    assert_usage_error(result, "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_same_file_for_two_outputs_is_refused(reduced_yaml_module, tmp_path):
    target = tmp_path / "x"  # no suffix: neither a results nor a model suffix refuses it first
    result = run(
        "compress", "--config", reduced_yaml_module, *FAST, "--method", "prune", "--out", target, "--output", target
    )
    assert_usage_error(result, "name the same file")
    assert list(tmp_path.iterdir()) == []


def test_results_path_ending_in_pt_is_refused(tmp_path):
    """'-o' is the results file: '-o small.pt' used to write a text table into small.pt."""
    target = tmp_path / "small.pt"
    result = run("compress", *FAST, "--method", "prune", "-o", target)
    assert_usage_error(result, "--output")
    assert "--out" in result.stderr and not target.exists()


def test_model_path_ending_in_json_is_refused(tmp_path):
    target = tmp_path / "small.json"
    result = run("compress", *FAST, "--method", "prune", "--out", target)
    assert_usage_error(result, "is the saved model")
    assert not target.exists()


RECOVER_QUICK = [
    "--set", "recover.steps=2", "--set", "recover.pool=8", "--set", "recover.batch=4",
    "--set", "recover.val_frames=4", "--set", "recover.val_every=1",
]  # fmt: skip


def test_prune_recover_notes_its_curve_hints_above_the_bound_and_saves(reduced_yaml_module, tmp_path):
    out = tmp_path / "recovered.pt"
    result = run(
        "compress", "--config", reduced_yaml_module, *FAST, "--method", "prune,recover", *RECOVER_QUICK,
        "--max-akd", "1e-9", "--out", out, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    pruned, recovered = record["rows"][1], record["rows"][2]
    assert (
        f"`compressbench compress --config {reduced_yaml_module} --weights random --method prune,recover "
        "--set recover.steps=300 --input-size 64`" in pruned["note"]
    )
    assert recovered["note"].startswith("recover: 2 steps in ")
    assert "--set recover.steps=8" in recovered["note"]  # already recovered: four times the steps
    report = record["stages"][1]["report"]
    assert [row["step"] for row in report["validation"]] == [0, 1, 2] and report["seconds"] > 0
    profiled = run("profile", "--model", out, "--input-size", "64", "--repeats", "2", "--warmup", "0", "--format", "json")
    assert profiled.exit_code == 0, profiled.output
    assert json.loads(profiled.stdout)["params"] == recovered["params"]


def test_a_saved_pruned_variant_recovers_towards_another_teacher(saved, reduced_yaml_module, tmp_path):
    from compressbench.api import load_model, save

    _, pruned = saved
    teacher = save(load_model("teacher", config=reduced_yaml_module, weights="random"), tmp_path / "original.pt")
    result = run(
        "compress", "--model", pruned, "--teacher", teacher, *FAST[2:], "--method", "recover", *RECOVER_QUICK,
        "--max-akd", "1e-9", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [row["variant"] for row in record["rows"]] == ["original", "pruned", "pruned+recover"]
    assert record["reference"] == "original" and record["rows"][0]["akd_px"] == 0.0
    recovered = record["rows"][2]
    assert recovered["note"].startswith("recover: 2 steps in ")  # the stage's note lands on its own row
    assert "recover:" not in (record["rows"][1]["note"] or "")  # not on the model's row before it


def test_teacher_that_is_the_model_itself_is_refused(saved):
    _, pruned = saved
    result = run("compress", "--model", pruned, "--teacher", pruned, *FAST[2:], "--method", "recover")
    assert result.exit_code == 2 and "--teacher names the model itself" in result.stderr


def test_rows_within_the_bound_get_no_hint(saved, reduced_yaml_module):
    result = run(
        "compress", "--config", reduced_yaml_module, *FAST, "--method", "prune", "--max-akd", "1e9", "--format", "json"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][1]["note"] is None
