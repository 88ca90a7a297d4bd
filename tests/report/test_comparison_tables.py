import math

from compressbench.records import ROW_KEYS
from compressbench.report import render
from compressbench.report.comparison_tables import comparison_sections

ENV = {
    "runtime": "torch", "batch": 1, "input_shape": [1, 3, 64, 64], "threads": 2, "repeats": 5, "warmup": 1,
    "cpu": "cpu", "torch": "2", "eval_frames": 4,
}  # fmt: skip


def row(name, **values):
    out = dict.fromkeys(ROW_KEYS)
    out.update(variant=name, method="none", params=10, macs=100, macs_int8=False, latency_ms=2.0, speedup=1.0)
    out.update(values)
    return out


RECORD = {
    "rows": [
        row("teacher"),
        row("teacher+quantize", method="quantize", macs_int8=True, latency_ms=None, speedup=None, note="no ORT"),
    ],
    "modules": [
        {
            "module": "hourglass",
            "teacher_ms": 1.5,
            "teacher_share": 0.75,
            "teacher+quantize_ms": None,
            "teacher+quantize_share": None,
        },
        {
            "module": "total",
            "teacher_ms": 2.0,
            "teacher_share": 1.0,
            "teacher+quantize_ms": None,
            "teacher+quantize_share": None,
        },
    ],
    "env": ENV,
    "notes": ["teacher+quantize: no ORT"],
    "stages": [
        {
            "method": "asym",
            "options": {"rank": 4},
            "report": {
                "mean_error": 0.125,
                "layers": [{"layer": "conv1", "rel_error": 0.5}, {"layer": "conv2", "rel_error": 0.25}],
            },
        }
    ],
}


def test_sections_titles_and_cells():
    sections = comparison_sections(RECORD)
    assert [s.title for s in sections] == [
        "Comparison",
        "Per-module latency, side by side (ms median, % of that model's end-to-end median)",
        "Stage 1: asym",
        "Stage 1: asym: layers",
    ]
    table = sections[0].frame
    assert list(table["int8"]) == ["no", "yes"]
    assert math.isnan(table["latency_ms"][1]) and table["speedup"][0] == 1.0
    assert "teacher+quantize: no ORT" in sections[0].notes
    modules = sections[1].frame
    assert list(modules.columns) == ["module", "teacher ms", "teacher %", "teacher+quantize ms", "teacher+quantize %"]
    assert modules["teacher %"][0] == 75.0
    assert sections[2].frame.to_dict("records") == [{"item": "mean_error", "value": "0.125"}]
    assert sections[2].notes == ["options: rank=4"]
    assert list(sections[3].frame["rel_error"]) == [0.5, 0.25]


def test_markdown_rendering_shows_missing_values_as_dashes():
    text = render(RECORD, comparison_sections(RECORD), "md")
    line = next(line for line in text.splitlines() if line.startswith("| teacher+quantize "))
    assert "| yes " in line and "| - " in line
