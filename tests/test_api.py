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
    assert run.final.stages[0].options == {"ratio": 0.5, "importance": "l2", "global_pruning": False, "iterative": 1, "ratios": ""}
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


# -- bench, report, baseline, check, machine: the commands' API, with the commands' defaults ------------


REDUCED_YAML = Path(__file__).resolve().parent.parent / "benchmarks" / "configs" / "teacher-reduced.yaml"


def _options(command: str) -> dict:
    """``{python name: default}`` of a command's options and arguments."""
    import typer

    from compressbench.cli import app

    return {p.name: p.default for p in typer.main.get_command(app).commands[command].params if not p.required}


@pytest.mark.parametrize(
    "function, command, renamed",
    [
        ("bench", "bench", {}),
        ("report", "report", {}),
        ("baseline", "baseline", {"models": "models"}),
        ("check", "check", {}),
        ("machine", "machine", {}),
    ],
)
def test_the_api_takes_the_commands_defaults(function, command, renamed):
    import inspect

    from compressbench import api
    from compressbench.cli.common import DEFAULT_SUITE

    cli = _options(command)
    python = {n: p.default for n, p in inspect.signature(getattr(api, function)).parameters.items() if p.default is not p.empty}
    shared = (set(cli) & set(python)) - {"suite"}
    assert shared, f"{function} shares no option with compressbench {command}"
    for name in shared:
        want, got = cli[name], python[name]
        if name == "models":
            want = want or None  # typer's empty list of a repeatable option
        assert (str(got) if isinstance(got, Path) else got) == (str(want) if isinstance(want, Path) else want), name
    assert api.DEFAULT_SUITE == DEFAULT_SUITE
    if "no_cache" in cli:  # bench's flags read the other way round
        assert python["use_cache"] is not cli["no_cache"] and python["profiles"] is not cli["no_profiles"]


def test_no_exported_name_hides_a_module_of_the_package():
    import importlib.util

    hidden = [name for name in compressbench.__all__ if importlib.util.find_spec(f"compressbench.{name}") is not None]
    assert not hidden, f"compressbench.{hidden[0]} is a module: export the function under another name"
    assert compressbench.run_bench.__wrapped__.__name__ == "bench" and compressbench.write_report.__wrapped__.__name__ == "report"


@pytest.fixture
def reduced_suite(tmp_path, monkeypatch):
    """Two variants of the reduced teacher at 64 px, timed twice; the gate's settings to match."""
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # the gate reads [tool.compressbench] of ./pyproject.toml
    (tmp_path / "pyproject.toml").write_text(
        "[tool.compressbench]\ninput_size = 64\nrepeats = 3\nwarmup = 1\nthreads = 1\nbootstrap = 200\n"
    )
    suite = tmp_path / "suite.toml"
    suite.write_text(
        "[measure]\nthreads = 1\nwarmup = 0\nrepeats = 2\nframes = 2\ncalib = 2\ninput_size = 64\n"
        f'[[variant]]\nname = "small"\nconfig = "{REDUCED_YAML}"\n'
        f'[[variant]]\nname = "small-exact"\nconfig = "{REDUCED_YAML}"\nmethod = "exact"\n'
    )
    return suite


def test_bench_writes_the_results_and_report_renders_them(tmp_path, reduced_suite):
    results = compressbench.run_bench(reduced_suite, output=tmp_path / "results.json", profiles=False)
    rows = {r["variant"]: r for r in results["comparison"]["rows"]}
    assert list(rows) == ["small", "small-exact"]
    assert rows["small"]["speedup"] == 1.0 and rows["small"]["akd_px"] == 0.0 and rows["small-exact"]["akd_px"] < 1e-3
    assert rows["small-exact"]["params"] == SMALL_PARAMS - BATCHNORM_PARAMS
    import json

    assert json.loads((tmp_path / "results.json").read_text())["comparison"]["rows"][1]["variant"] == "small-exact"
    only = compressbench.run_bench(reduced_suite, output=None, only=["small"], profiles=False)
    assert [r["variant"] for r in only["comparison"]["rows"]] == ["small"] and only["cached"] == []

    written = compressbench.write_report(tmp_path / "results.json", tmp_path / "out" / "REPORT.md")
    assert written[0] == tmp_path / "out" / "REPORT.md" and all(p.is_file() for p in written)
    text = written[0].read_text()
    assert "small-exact" in text and f"compressbench report {tmp_path / 'results.json'}" in text
    with pytest.raises(CompressbenchError, match=r"^akd_budget= must be a positive number of pixels, got 0$"):
        compressbench.write_report(tmp_path / "results.json", akd_budget=0)
    with pytest.raises(CompressbenchError, match=r"^output= small.pt is for results"):
        compressbench.run_bench(reduced_suite, output="small.pt")


def test_baseline_then_check_pass_and_a_grown_model_fails(tmp_path, reduced_suite):
    run = compressbench.baseline(reduced_suite, output=tmp_path / "b.json", only="small", force=True)
    assert run.path == tmp_path / "b.json" and run.path.is_file() and [v.name for v in run.suite.variants] == ["small"]
    (entry,) = run.recorded["entries"]
    assert entry["name"] == "small" and entry["params"] == SMALL_PARAMS and entry["spec"]["config"] == str(REDUCED_YAML)

    heard: list[str] = []
    verdict = compressbench.check(run.path, latency="advisory", on_note=heard.append)
    assert (verdict.exit_code, verdict.passed) == (0, True) and verdict.notes == tuple(heard)
    assert [r["name"] for r in verdict.results] == ["small"] and verdict.results[0]["counts"]["status"] == "pass"
    assert verdict.record["latency_mode"] == "advisory" and verdict.settings.repeats == 3

    from compressbench.models import DetectorConfig, build_teacher

    wider = compressbench.save(build_teacher(DetectorConfig(block_expansion=12, max_features=64, num_blocks=3)), tmp_path / "w.pt")
    grown = compressbench.check(run.path, model=wider, entry="small", latency="advisory")
    assert (grown.exit_code, grown.passed) == (1, False) and grown.results[0]["counts"]["status"] == "regression"
    with pytest.raises(CompressbenchError, match=r"^repeats= must be a positive integer, got 0$"):
        compressbench.check(run.path, repeats=0)
    with pytest.raises(CompressbenchError, match=r"^give a suite \(with only=\) or model=, not both$"):
        compressbench.baseline(reduced_suite, models=["teacher"], output=None)


def test_machine_returns_the_fingerprint_key_the_command_prints():
    import json

    from typer.testing import CliRunner

    from compressbench.cli import app
    from compressbench.profiling.machine import this_machine

    record = compressbench.machine(peaks=False)
    printed = CliRunner().invoke(app, ["machine", "--no-peaks", "--format", "json"])
    assert printed.exit_code == 0, printed.output
    assert record["machine"]["key"] == json.loads(printed.stdout)["machine"]["key"] == this_machine().key
    assert record["peaks"] is None and "healthy" in record["health"]


def test_load_variant_is_one_trip(tmp_path, monkeypatch):
    import compressbench.provenance as provenance

    path = compressbench.save(small_teacher(), tmp_path / "small.pt")
    reads = []
    real = provenance.read_checkpoint
    monkeypatch.setattr(provenance, "read_checkpoint", lambda *a, **k: reads.append(a) or real(*a, **k))
    loaded = compressbench.load_variant(path)
    assert len(reads) == 1  # the file is read once, for the module and its provenance both
    assert loaded.name == "small" and loaded.provenance == provenance.provenance_of(path) and not loaded.module.training
    named = compressbench.load_variant("teacher", config=REDUCED_YAML, name="base")
    assert named.name == "base" and named.provenance.base.args["config"]["block_expansion"] == 8
    assert compressbench.load_variant(named.module).name == "model"


# -- compress, profile, evaluate, export, distill, search, sensitivity: the API gives what the command prints ----


REDUCED_CLI = ["--weights", "random", "--input-size", "64", "--frames", "2", "--repeats", "1", "--warmup", "0", "--threads", "1"]
REDUCED_API = {"weights": "random", "input_size": 64, "frames": 2, "repeats": 1, "warmup": 0, "threads": 1}
DETERMINISTIC_ROW = ("variant", "method", "params", "macs", "akd_px", "jacobian_error")


def _command_json(*args) -> dict:
    """What ``compressbench ARGS --format json`` prints, on the same seeded start as the API call."""
    import json

    from typer.testing import CliRunner

    from compressbench.cli import app

    torch.manual_seed(0)  # random weights: the same draw as the API call's
    result = CliRunner().invoke(app, [str(a) for a in (*args, "--format", "json")])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _seeded(function, *args, **kwargs):
    torch.manual_seed(0)
    return function(*args, **kwargs)


def _rows(record) -> list[dict]:
    return [{key: row.get(key) for key in DETERMINISTIC_ROW} for row in record["rows"]]


def _as_written(record) -> dict:
    """A record as its JSON file holds it (numbers as the command prints them)."""
    import json

    from compressbench.files import render_json

    return json.loads(render_json(record.to_json() if hasattr(record, "to_json") else record))


@pytest.mark.parametrize(
    "function, command, different",
    [
        ("compress", "compress", {"precision"}),  # None: the precision in runtime= ("openvino:bf16"), else fp32
        ("profile", "profile", {"input_size", "depth"}),  # None: 256 or a deployed file's size; depth 2 is the table's
        ("evaluate", "evaluate", set()),
        ("export", "export", set()),
        ("distill", "distill", set()),
        ("search", "search", set()),
        ("sensitivity", "sensitivity", set()),
    ],
)
def test_the_measuring_commands_defaults_are_the_apis(function, command, different):
    import inspect

    from compressbench import api

    cli = _options(command)
    python = {n: p.default for n, p in inspect.signature(getattr(api, function)).parameters.items() if p.default is not p.empty}
    shared = set(cli) & set(python)
    assert shared, f"{function} shares no option with compressbench {command}"
    for name in shared - different:
        want, got = cli[name], python[name]
        assert (str(got) if isinstance(got, Path) else got) == (str(want) if isinstance(want, Path) else want), name


def test_compress_gives_the_commands_record_and_names_the_files_it_wrote(reduced_yaml, tmp_path):
    from compressbench.provenance import sidecar_path

    run = _seeded(compressbench.compress, "teacher", "prune", ratio=0.5, config=reduced_yaml, out=tmp_path / "api.pt", **REDUCED_API)
    printed = _command_json("compress", "--config", reduced_yaml, *REDUCED_CLI, "--method", "prune", "--ratio", "0.5",
                            "--out", tmp_path / "cli.pt")  # fmt: skip
    record = _as_written(run.record)
    assert _rows(record) == _rows(printed) and len(printed["rows"]) == 2
    assert [r["note"] for r in record["rows"]] == [r["note"] for r in printed["rows"]]  # the same recover hints
    assert record["out"] == str(tmp_path / "api.pt") and printed["out"] == str(tmp_path / "cli.pt")
    assert run.written == (tmp_path / "api.pt", sidecar_path(tmp_path / "api.pt")) and all(p.is_file() for p in run.written)
    assert compressbench.load_variant(tmp_path / "api.pt").provenance == compressbench.load_variant(tmp_path / "cli.pt").provenance


def test_profile_gives_the_commands_record(reduced_yaml):
    record = _seeded(compressbench.profile, "teacher", config=reduced_yaml, peaks=False,
                     **{k: v for k, v in REDUCED_API.items() if k != "frames"})  # fmt: skip
    printed = _command_json("profile", "--config", reduced_yaml, *[a for a in REDUCED_CLI if a not in ("--frames", "2")],
                            "--no-peaks")  # fmt: skip
    doc = _as_written(record)
    for key in ("model", "params", "macs_fvcore", "macs_thop", "input_shape", "batch", "input_size", "threads"):
        assert doc[key] == printed[key], key
    layer_keys = ("name", "layer", "kind", "macs", "bytes", "params")
    def layers(record):
        return [{key: layer.get(key) for key in layer_keys} for layer in record["layers"]]

    assert layers(doc) == layers(printed) and len(layers(doc)) > 1


def test_evaluate_gives_the_commands_record(reduced_yaml):
    from compressbench.evaluation import METRIC_KEYS

    quick = {"weights": "random", "frames": 2, "threads": 1}
    record = _seeded(compressbench.evaluate, "teacher", config=reduced_yaml, against="ground-truth", **quick)
    printed = _command_json("evaluate", "--config", reduced_yaml, "--weights", "random", "--frames", "2", "--threads", "1",
                            "--against", "ground-truth")  # fmt: skip
    assert record["akd_px"] is not None and record["landmark_error_px"] is not None
    for key in ("model", "data", "frames", "against", "image_size", "batch_size", "seed", "notes", *METRIC_KEYS):
        assert _as_written(record)[key] == printed[key], key


def test_export_gives_the_commands_manifest(reduced_yaml, tmp_path):
    pytest.importorskip("onnxruntime")
    result = _seeded(compressbench.export, "teacher", tmp_path / "api", "exact", runtime="onnxruntime", config=reduced_yaml,
                     **REDUCED_API)  # fmt: skip
    printed = _command_json("export", "--config", reduced_yaml, *REDUCED_CLI, "--method", "exact", "--runtime", "onnxruntime",
                            "--out", tmp_path / "cli")  # fmt: skip
    manifest = _as_written(result.manifest)
    assert result.folder == tmp_path / "api" and all(p.is_file() for p in result.files)
    for key in ("variant", "input", "outputs", "fidelity"):
        assert manifest[key] == printed[key], key
    assert sorted(manifest["files"]) == sorted(printed["files"])


def test_distill_gives_the_commands_record_and_saves_the_student(tmp_path):
    from compressbench.models import build_teacher
    from tests.conftest import REDUCED

    torch.manual_seed(0)
    teacher = compressbench.save(build_teacher(REDUCED).eval(), tmp_path / "teacher.pt")
    fast = {"steps": 2, "batch": 2, "val_frames": 4, "val_every": 2, "eval_frames": 2, "size": 64}
    run = _seeded(compressbench.distill, "erfnet-0.5", teacher=teacher, out=tmp_path / "api.pt", threads=1, warmup=0,
                  repeats=2, **fast)  # fmt: skip
    printed = _command_json("distill", "--student", "erfnet-0.5", "--teacher", teacher, "--steps", "2", "--batch", "2",
                            "--val-frames", "4", "--val-every", "2", "--frames", "2", "--repeats", "2", "--warmup", "0",
                            "--threads", "1", "--input-size", "64", "--out", tmp_path / "cli.pt")  # fmt: skip
    record = _as_written(run.record)
    assert _rows(record) == _rows(printed) and record["rows"][1]["variant"] == "erfnet-0.5-l1"
    assert run.saved == tmp_path / "api.pt" and record["out"] == str(run.saved) and run.variant.name == "erfnet-0.5-l1"
    assert record["training"]["steps"] == printed["training"]["steps"] == 2
    with torch.inference_mode():
        x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        assert torch.equal(compressbench.load_model(run.saved)(x)["value"], compressbench.load_model(tmp_path / "cli.pt")(x)["value"])


def test_search_gives_the_commands_record_and_writes_what_it_is_asked_to(reduced_yaml, tmp_path):
    from compressbench.compression import parse_set_options

    recover = ["recover.pool=8", "recover.batch=4", "recover.val_frames=4", "recover.val_every=1"]
    tiny = {
        "weights": "random", "size": 64, "frames": 2, "repeats": 2, "warmup": 0, "threads": 1, "methods": ("prune", "exact", "recover"),
        "min_steps": 1, "max_steps": 1, "budget": "10m", "runtime": "torch", "fronts_on": (), "plan": False, "max_akd": 1000,
        "recover": parse_set_options(recover)["recover"],
    }  # fmt: skip
    run = _seeded(compressbench.search, "teacher", config=reduced_yaml, cache=tmp_path / "api-cache", out=tmp_path / "api.pt",
                  results=tmp_path / "api.json", **tiny)  # fmt: skip
    printed = _command_json(
        "search", "--config", reduced_yaml, "--weights", "random", "--input-size", "64", "--frames", "2", "--repeats", "2",
        "--warmup", "0", "--threads", "1", "--methods", "prune,exact,recover", "--min-steps", "1", "--max-steps", "1",
        "--budget", "10m", "--runtime", "torch", "--fronts-on", "", "--no-plan", "--max-akd", "1000",
        "--cache", tmp_path / "cli-cache", *[a for s in recover for a in ("--set", s)],
    )  # fmt: skip
    record, winner = run  # unpacks as the search's (record, winner) always did
    doc = _as_written(record)
    mine, theirs = {r["variant"]: r for r in _rows(doc)}, {r["variant"]: r for r in _rows(printed)}
    common = set(mine) & set(theirs)  # which candidates survive screening may depend on timing
    assert doc["rows"][0]["variant"] in common and len(common) >= 2
    assert all(mine[name] == theirs[name] for name in common)
    assert winner is not None and doc["winner"] == winner.name and doc["out"] == str(tmp_path / "api.pt")
    assert run.written == (tmp_path / "api.pt", tmp_path / "api.pt.json", tmp_path / "api.json")
    assert all(path.is_file() for path in run.written) and run.exported is None


def test_sensitivity_gives_the_commands_record(reduced_yaml):
    pytest.importorskip("onnxruntime")
    small = {"weights": "random", "input_size": 64, "frames": 2, "calibration_frames": 4, "threads": 1}
    record = _seeded(compressbench.sensitivity, "teacher", config=reduced_yaml, runtime="onnxruntime", only_int8=False,
                     latency=False, **small)  # fmt: skip
    printed = _command_json("sensitivity", "--config", reduced_yaml, "--weights", "random", "--input-size", "64", "--frames", "2",
                            "--calibration-frames", "4", "--threads", "1", "--runtime", "onnxruntime", "--no-alone",
                            "--no-timing")  # fmt: skip
    doc = _as_written(record)
    for key in ("model", "chain", "reference", "akd_fp32_px", "akd_int8_px", "layers"):
        assert doc[key] == printed[key], key
    assert doc["mixed"]["float_layers"] == printed["mixed"]["float_layers"]


def test_a_sensitivity_record_given_for_results_is_named(tmp_path):
    import json

    from compressbench.records import SENSITIVITY_FORMAT, read_results

    path = tmp_path / "sensitivity.json"
    path.write_text(json.dumps({"format": SENSITIVITY_FORMAT, "model": "teacher"}))
    with pytest.raises(CompressbenchError, match=r"is a sensitivity record written by 'compressbench sensitivity --output', "
                                                 r"not a compressbench results file; give the results JSON"):  # fmt: skip
        read_results(path)
