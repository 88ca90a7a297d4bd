"""The roofline plot and the report's efficiency part."""

from __future__ import annotations

from compressbench.profiling.peaks import Peaks
from compressbench.report.markdown_report import efficiency_part
from compressbench.report.plots import roofline_plot

PEAKS = Peaks(80.0, 100.0, 400.0, None, 20.0, 2, "k").to_dict()
LAYERS = [
    {"kind": "3x3 conv", "latency_ms": 4.0, "macs": 2_000_000, "intensity": 10.0, "gmacs_per_s": 50.0, "precision": "fp32"},
    {"kind": "depthwise 3x3 conv", "latency_ms": 1.0, "macs": 1000, "intensity": 0.25, "gmacs_per_s": 1.0, "precision": "fp32"},
    {"kind": "relu", "latency_ms": 1.0, "macs": 0, "intensity": 0.0, "gmacs_per_s": 0.0, "precision": "fp32"},
]


def test_roofline_png(tmp_path):
    path = roofline_plot(LAYERS, PEAKS, tmp_path / "roof.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert roofline_plot(LAYERS, None, tmp_path / "bare.png").is_file()  # no peaks: points only


def test_report_part_only_where_profiles_carry_peaks(tmp_path):
    results = {"profiles": {
        "teacher": {"layers": LAYERS, "efficiency": {"peaks": PEAKS, "why_not_faster": "3x3 convs take 67% of the time."}},
        "student": {"layers": LAYERS, "efficiency": {"peaks": None}},
    }}  # fmt: skip
    text, written = efficiency_part(results, ["teacher", "student", "teacher"], tmp_path / "report.md", "report")
    assert [p.name for p in written] == ["report-roofline-teacher.png"]
    assert text == "## Roofline: `teacher`\n\n![roofline](report-roofline-teacher.png)\n\nWhy not faster: 3x3 convs take 67% of the time.\n"
