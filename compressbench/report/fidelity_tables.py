"""The fidelity record of :func:`compressbench.evaluation.evaluate` as a table: one row per metric."""

from __future__ import annotations

import pandas as pd

from compressbench.report.render import Section, format_value, plural

# metric key -> (unit, what it measures); no '|' in the text, it would split a Markdown cell
METRIC_ROWS = {
    "akd_px": ("px", "mean keypoint distance to the reference (AKD, as in the blog's distillation part)"),
    "jacobian_error": ("-", "mean absolute difference of the 2x2 jacobian entries"),
    "heatmap_mse": ("prob^2", "mean squared heatmap difference per pixel"),
    "heatmap_kl": ("nats", "KL divergence of the reference from the model per heatmap"),
    "heatmap_peak": ("prob", "mean of the model's per-heatmap maxima (sharpness)"),
    "landmark_error_px": ("px", "mean keypoint distance to ground-truth landmarks"),
    "nmae": ("fraction", "NMAE of the landmark-heatmap article: mean absolute coordinate error / image side"),
}


def fidelity_sections(record: dict) -> list[Section]:
    """One section listing every metric of ``record`` with its unit; missing values show as '-'."""
    rows = [
        # one metric per row: each value gets its own precision (a column-wide one would zero the small ones)
        {"metric": key, "value": format_value(record.get(key)), "unit": unit, "meaning": meaning}
        for key, (unit, meaning) in METRIC_ROWS.items()
    ]
    size = record.get("image_size")
    frames = record["frames"]
    title = (
        f"Fidelity of {record['model']} against {record['against']}: "
        f"{plural(frames, 'frame')} of {record['data']}, {size}x{size}"
    )
    return [Section(title, pd.DataFrame(rows), list(record.get("notes") or []))]
