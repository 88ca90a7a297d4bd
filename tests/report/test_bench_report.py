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
    done = runner.invoke(app, ["bench", str(tiny_suite), "--output", str(results)])
    assert done.exit_code == 0, done.output
    assert "Comparison" in done.stdout and "small-prune-int8" in done.stdout  # the table, not only 'wrote'
    assert "from the cache" not in done.stderr and f"wrote {results}" in done.stderr
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
    again = runner.invoke(app, ["bench", "--suite", str(tiny_suite), "-o", str(cached), "--no-profiles"])
    assert again.exit_code == 0, again.output
    assert "3 variants loaded from the cache" in again.stderr and "(small-exact, small-prune, small-prune-int8)" in again.stderr
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
    assert "(the blog's per-module table)" in text and "(the blog's hourglass table)" in text
    assert "seed 0" not in text  # the source documents are named by what they are, not by file number
    # teacher and best variant (the pruned int8 one is fastest within 1 px) share the teacher's block names
    hourglass = [f"downblock_{i}" for i in (1, 2, 3)] + [f"upblock_{i}" for i in (1, 2, 3)]
    assert plotted and list(plotted)[0] == "small"
    for name, per_block in plotted.items():
        assert list(per_block) == ["anti_alias", *hourglass, "heatmap_keypoint", "jacobian"], name
        assert all(per_block[block] > 0 for block in hourglass), name
    for picture in ("report-pareto.png", "report-layers.png", "report-overlays.png"):
        assert (tmp_path / picture).stat().st_size > 1000
        assert f"]({picture})" in text

    # a bound no variant meets: the headline says so (the search's "no winner"), it never names one outside
    closest = min(rows[v]["akd_px"] for v in rows if v != "small")
    assert closest > 0  # exact's float rounding: a bound below it leaves no variant within
    strict = tmp_path / "STRICT.md"
    done = runner.invoke(app, ["report", str(results), "-o", str(strict), "--akd-budget", f"{closest / 2:.3g}"])
    assert done.exit_code == 0, done.output
    text = strict.read_text()
    assert f"**No variant within {float(f'{closest / 2:.3g}'):g} px AKD.** The most faithful, `small-exact`" in text
    assert "Best variant within" not in text

    # from any folder: the default output folder (reports/) is created there
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    done = runner.invoke(app, ["report", str(results)])
    assert done.exit_code == 0, done.output
    assert (elsewhere / "reports" / "REPORT.md").is_file() and (elsewhere / "reports" / "report-pareto.png").is_file()


def test_report_errors(tmp_path):
    missing = runner.invoke(app, ["report", str(tmp_path / "none.json"), "-o", str(tmp_path / "r.md")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    # the missing input is reported, not the missing output folder, and no folder is created
    missing = runner.invoke(app, ["report", str(tmp_path / "none.json"), "-o", str(tmp_path / "new" / "r.md")])
    assert missing.exit_code == 2 and "none.json does not exist" in missing.stderr
    assert "written by 'compressbench bench'" in missing.stderr and not (tmp_path / "new").exists()
    compressed = tmp_path / "compress.json"
    compressed.write_text('{"rows": [], "chain": ["prune"], "env": {}}')
    wrong = runner.invoke(app, ["report", str(compressed), "-o", str(tmp_path / "r.md")])
    assert wrong.exit_code == 2 and "written by 'compressbench compress'" in wrong.stderr
    assert "give the results JSON written by 'compressbench bench'" in wrong.stderr
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"rows": []}')
    bad = runner.invoke(app, ["report", str(foreign), "-o", str(tmp_path / "r.md")])
    assert bad.exit_code == 2 and "not a compressbench results file" in bad.stderr
    assert not (tmp_path / "r.md").exists()
    unknown = runner.invoke(app, ["bench", str(tmp_path / "none.toml")])
    assert unknown.exit_code == 2 and "does not exist" in unknown.stderr
