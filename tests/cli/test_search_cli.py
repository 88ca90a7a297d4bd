"""``compressbench search`` through the CLI: a tiny real run, and every bad input before any training."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from compressbench.cli import app

runner = CliRunner()
TINY = [
    "--weights", "random", "--input-size", "64", "--frames", "2", "--repeats", "2", "--warmup", "0", "--threads", "1",
    "--methods", "prune,exact,recover", "--min-steps", "1", "--max-steps", "1", "--budget", "10m", "--runtime", "torch",
    "--fronts-on", "",
    "--set", "recover.pool=8", "--set", "recover.batch=4", "--set", "recover.val_frames=4", "--set", "recover.val_every=1",
]  # fmt: skip


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_a_tiny_search_writes_the_winner_and_the_results(reduced_yaml, tmp_path):
    out, results = tmp_path / "best.pt", tmp_path / "results.json"
    result = run(
        "search", "--config", reduced_yaml, *TINY, "--max-akd", "1000", "--cache", tmp_path / "cache",
        "--out", out, "--results", results, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(results.read_text())
    assert record["winner"] in record["front"] and record["max_akd"] == 1000.0
    assert json.loads(result.stdout)["winner"] == record["winner"]
    profiled = run("profile", "--model", out, "--input-size", "64", "--repeats", "2", "--warmup", "0", "--format", "json")
    assert profiled.exit_code == 0, profiled.output
    winner = next(r for r in record["rows"] if r["variant"] == record["winner"])
    assert json.loads(profiled.stdout)["params"] == winner["params"]
    reported = run("report", results, "-o", tmp_path / "report" / "REPORT.md")
    assert reported.exit_code == 0, reported.output
    text = (tmp_path / "report" / "REPORT.md").read_text()
    assert (tmp_path / "report" / "report-pareto.png").stat().st_size > 0
    line = next(line for line in text.splitlines() if line.startswith("Pareto front: "))
    shown = set(re.findall(r"`([^`]+)`", line))
    # the report's front has the teacher row too: a search front variant is missing only where the
    # teacher is at least as fast and as close (e.g. exact on a tiny model, within timing noise)
    rows = {r["variant"]: r for r in record["rows"]}
    teacher = record["rows"][0]
    assert shown <= set(record["front"]) | {teacher["variant"]}
    for name in set(record["front"]) - shown:
        assert teacher["latency_ms"] <= rows[name]["latency_ms"] and teacher["akd_px"] <= rows[name]["akd_px"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--max-akd", "0"], "--max-akd must be a positive number of pixels"),
        (["--max-akd", "-1"], "--max-akd must be a positive number of pixels"),
        (["--budget", "0"], "--budget must be a positive duration"),
        (["--budget", "an hour"], "--budget 'an hour' is not a duration"),
        (["--methods", "prune,nosuch"], "unknown compression method 'nosuch' in the candidates"),
        (["--set", "recover.steps=300"], "recover.steps is what the search decides"),
        (["--set", "recover.lr=fast"], "recover: option lr expects float"),
        (["--out", "no/such/folder/best.pt"], "folder no/such/folder does not exist"),
        (["--suite", "no/such/folder/front.toml"], "--suite rebuilds the front from the model's trained weights"),
        (["--weights", "default", "--suite", "no/such/folder/front.toml"], "folder no/such/folder does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(reduced_yaml, tmp_path, args, fragment):
    cache = tmp_path / "cache"
    result = run("search", "--config", reduced_yaml, *TINY, "--cache", cache, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert not cache.exists()


def test_an_include_that_is_not_a_model_is_refused(reduced_yaml, tmp_path):
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a model")
    result = run("search", "--config", reduced_yaml, *TINY, "--cache", tmp_path / "cache", "--include", bogus)
    assert result.exit_code == 2, result.output
    assert "--include" in result.stderr and str(bogus) in result.stderr
    assert not (tmp_path / "cache").exists()


def _record(akd: float, interval: float | None) -> dict:
    rows = [
        {"variant": "teacher", "method": "", "akd_px": 0.2, "akd_px_ci95": 0.01, "latency_ms": 3.0, "speedup": 1.0},
        {"variant": "prune-0.5+exact", "method": "prune,exact", "akd_px": akd, "akd_px_ci95": interval,
         "latency_ms": 1.0, "speedup": 3.0},
    ]  # fmt: skip
    return {"rows": rows, "front": ["prune-0.5+exact"], "winner": "prune-0.5+exact", "max_akd": 1.0, "budget_s": 60.0,
            "spent_s": 59.0, "interrupted": False, "env": {"eval_frames": 32}}  # fmt: skip


@pytest.mark.parametrize(
    "akd, interval, flagged",
    [(0.98, 0.10, True), (0.85, 0.10, False), (0.90, 0.10, False), (0.98, None, False)],
)
def test_the_headline_flags_a_winner_whose_interval_reaches_past_the_bound(akd, interval, flagged):
    """0.98 +- 0.10 px against 1 px could be 1.08 on other frames: said on the winner's line; 0.90
    +- 0.10 reaches the bound exactly and is not flagged; no interval (one frame) says nothing."""
    from compressbench.cli.search_cmd import search_sections

    line = search_sections(_record(akd, interval))[0].notes[0]
    assert line.startswith("fastest within 1 px: prune-0.5+exact")
    want = f" (flagged: its held-out AKD {akd:.3f} +- 0.100 px, 95% over 32 frames, reaches past the bound; more --frames settle it)"
    assert line.endswith(want) is flagged and ("flagged" in line) is flagged
