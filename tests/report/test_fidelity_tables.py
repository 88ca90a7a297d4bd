"""The fidelity record as a table: one row per metric, safe in Markdown."""

from compressbench.report import render_markdown
from compressbench.report.fidelity_tables import fidelity_sections


def test_fidelity_table_cells_never_split_a_markdown_row():
    record = {"model": "m", "against": "teacher", "frames": 1, "data": "synthetic", "image_size": 256, "akd_px": 1.5, "notes": []}
    text = render_markdown(fidelity_sections(record))
    assert "1 frame of synthetic" in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 7 and all(row.count("|") == 5 for row in rows)
    assert "| akd_px            |   1.500 |" in text and "| nmae              |       - |" in text  # numbers right-aligned
