"""Pareto-plot labels: no two overlap on a crowded front, and the log axis reads as plain numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compressbench.report.labels import overlapping_pairs, place_labels  # noqa: E402
from compressbench.report.plots import pareto_plot, readable_log_axis  # noqa: E402

# a crowded front: 14 variants within a factor of two of latency and a few tenths of a pixel,
# names as long as the suite's (the kind of front on which 'exact' and 'teacher' used to merge)
CROWDED = [
    {"variant": name, "latency_ms": 20.0 + 0.5 * i, "akd_px": 0.5 - 0.01 * i + 0.004 * (i % 3)}
    for i, name in enumerate(
        ["teacher", "exact", "exact+quantize", "prune-0.3", "prune-0.5", "prune-0.5+recover", "quantize",
         "asym-0.5", "dsconv", "squeeze-unet-0.25", "lednet-0.5", "erfnet-0.5", "esnet-0.5", "edanet-0.5"]
    )
] + [{"variant": "reference", "latency_ms": 400.0, "akd_px": 0.0}, {"variant": "untrained", "latency_ms": 3.0, "akd_px": 20.0}]  # fmt: skip


def test_crowded_labels_do_not_overlap():
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xs, ys = [r["latency_ms"] for r in CROWDED], [r["akd_px"] for r in CROWDED]
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    before = [ax.text(x, y, r["variant"], fontsize=7) for x, y, r in zip(xs, ys, CROWDED)]
    fig.canvas.draw()
    assert overlapping_pairs(ax, before)  # unplaced, this front's labels do collide
    for text in before:
        text.remove()
    texts = place_labels(ax, xs, ys, [r["variant"] for r in CROWDED])
    fig.canvas.draw()
    assert len(texts) == len(CROWDED)
    assert overlapping_pairs(ax, texts) == []
    plt.close(fig)


def test_log_axis_labels_are_plain_numbers():
    fig, ax = plt.subplots()
    ax.plot([12, 95], [0, 1])
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis)
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and 12 <= t.get_position()[0] <= 95]
    assert shown == ["20", "50"]
    plt.close(fig)


def test_pareto_plot_writes_a_png(tmp_path):
    path = pareto_plot(CROWDED, [r["variant"] for r in CROWDED[:5]], "exact", tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
