"""A tiny suite end to end: bench -> results JSON -> Markdown report with its pictures."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from compressbench.api import save
from compressbench.cli import app
from compressbench.models import DetectorConfig, build_teacher

runner = CliRunner()


@pytest.fixture
def tiny_suite(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = tmp_path / "small.pt"
    save(build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)), model)
    suite = tmp_path / "suite.toml"
    suite.write_text(
        "[measure]\nthreads = 1\nwarmup = 0\nrepeats = 2\nframes = 2\ncalib = 2\ninput_size = 64\n"
        f'[[variant]]\nname = "small"\nmodel = "{model}"\n'
        f'[[variant]]\nname = "small-exact"\nmodel = "{model}"\nmethod = "exact"\n'
        f'[[variant]]\nname = "small-prune"\nmodel = "{model}"\nmethod = "prune"\noptions = {{ ratio = 0.5 }}\n'
        f'[[variant]]\nname = "small-prune-int8"\nmodel = "{model}"\nmethod = "prune,quantize"\n'
        'options = { ratio = 0.5, calib = 2 }\n'
    )
    return suite


def test_bench_then_report(tmp_path, tiny_suite, monkeypatch):
    results = tmp_path / "results.json"
    done = runner.invoke(app, ["bench", str(tiny_suite), "--out", str(results)])
    assert done.exit_code == 0, done.output
    doc = json.loads(results.read_text())
    rows = {r["variant"]: r for r in doc["comparison"]["rows"]}
    assert list(rows) == ["small", "small-exact", "small-prune", "small-prune-int8"]
    assert rows["small-prune-int8"]["macs_int8"] is True
    assert rows["small"]["speedup"] == 1.0 and rows["small"]["akd_px"] == 0.0
    assert rows["small-exact"]["akd_px"] < 1e-3  # exact rewrites change no output
    assert rows["small-prune"]["params"] < rows["small"]["params"]
    assert set(doc["profiles"]) == set(rows) and doc["profiles"]["small"]["hourglass_layout"]
    assert len(doc["overlays"]["points"]["small"]) == 2

    # a second run builds nothing: the registered-model variants come from the cache, stages and all
    cached = tmp_path / "cached.json"
    again = runner.invoke(app, ["bench", str(tiny_suite), "--out", str(cached), "--no-profiles"])
    assert again.exit_code == 0, again.output
    cached_rows = {r["variant"]: r for r in json.loads(cached.read_text())["comparison"]["rows"]}
    assert cached_rows["small-prune-int8"]["params"] == rows["small-prune-int8"]["params"]
    assert cached_rows["small-prune-int8"]["macs"] == rows["small-prune-int8"]["macs"]

    import compressbench.report.markdown_report as markdown_report

    plotted = {}

    def layer_bars(per_block, path):  # the data the per-block chart is drawn from
        plotted.update(per_block)
        return real_layer_bars(per_block, path)

    real_layer_bars = markdown_report.layer_bars
    monkeypatch.setattr(markdown_report, "layer_bars", layer_bars)
    report = tmp_path / "REPORT.md"
    done = runner.invoke(app, ["report", str(results), "-o", str(report), "--akd-budget", "1.0"])
    assert done.exit_code == 0, done.output
    text = report.read_text()
    assert "## All variants" in text and "Pareto front:" in text and "small-exact" in text
    assert "(seed 000's first table)" in text and "(seed 000's second table)" in text
    # teacher and best variant (the pruned int8 one is fastest within 1 px) share the teacher's block names
    hourglass = [f"downblock_{i}" for i in (1, 2, 3)] + [f"upblock_{i}" for i in (1, 2, 3)]
    assert plotted and list(plotted)[0] == "small"
    for name, per_block in plotted.items():
        assert list(per_block) == ["anti_alias", *hourglass, "heatmap_keypoint", "jacobian"], name
        assert all(per_block[block] > 0 for block in hourglass), name
    for picture in ("report-pareto.png", "report-layers.png", "report-overlays.png"):
        assert (tmp_path / picture).stat().st_size > 1000
        assert f"]({picture})" in text


def test_report_errors(tmp_path):
    missing = runner.invoke(app, ["report", str(tmp_path / "none.json"), "-o", str(tmp_path / "r.md")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"rows": []}')
    bad = runner.invoke(app, ["report", str(foreign), "-o", str(tmp_path / "r.md")])
    assert bad.exit_code == 2 and "not a compressbench results file" in bad.stderr
    assert not (tmp_path / "r.md").exists()
    unknown = runner.invoke(app, ["bench", str(tmp_path / "none.toml")])
    assert unknown.exit_code == 2 and "does not exist" in unknown.stderr
