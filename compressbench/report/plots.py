"""Matplotlib figures for reports (headless Agg backend), written atomically as PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from compressbench.files import write_atomic  # noqa: E402
from compressbench.report.labels import place_labels  # noqa: E402


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, buffer.getvalue())


def readable_log_axis(axis) -> None:
    """Plain numbers on a log axis ("20", "50", not "2x10^1"): majors at 1-2-5 steps, no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def pareto_plot(rows: list[dict], front: list[str], best: str | None, path: Path) -> Path:
    """Latency against AKD for every variant; the Pareto front joined and highlighted; labels placed
    so they never overlap, the legend outside the axes so it covers no point or label."""
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    usable = [r for r in rows if r.get("latency_ms") is not None and r.get("akd_px") is not None]
    for r in usable:
        on_front = r["variant"] in front
        ax.scatter(
            r["latency_ms"], r["akd_px"], s=60 if on_front else 30, marker="o" if on_front else "s",
            c="tab:red" if on_front else "tab:gray", zorder=3,
        )  # fmt: skip
    line = sorted((r for r in usable if r["variant"] in front), key=lambda r: r["latency_ms"])
    if len(line) > 1:
        ax.plot([r["latency_ms"] for r in line], [r["akd_px"] for r in line], c="tab:red", lw=1, zorder=2)
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis)
    ax.margins(x=0.15, y=0.15)
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())  # fixed from here on: labels are placed in these coordinates
    ax.set_ylim(ax.get_ylim())
    ax.set_xlabel("latency, median (ms, log scale)")
    ax.set_ylabel("AKD against the teacher (px of 256)")
    ax.grid(True, which="major", alpha=0.3)
    handles = [
        Line2D([], [], marker="o", color="tab:red", lw=1, markersize=7, label="Pareto front"),
        Line2D([], [], marker="s", color="tab:gray", lw=0, markersize=5, label="dominated"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    labels = [r["variant"] + ("  (best)" if r["variant"] == best else "") for r in usable]
    place_labels(ax, [r["latency_ms"] for r in usable], [r["akd_px"] for r in usable], labels)
    return _save(fig, path)


def layer_bars(per_block: dict[str, dict[str, float]], path: Path) -> Path:
    """Grouped horizontal bars: time per block for each model ({model: {block: ms}})."""
    models = list(per_block)
    blocks: list[str] = []
    for values in per_block.values():
        blocks += [b for b in values if b not in blocks]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.32 * len(blocks) * len(models))))
    height = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        ys = [j + i * height for j in range(len(blocks))]
        ax.barh(ys, [per_block[model].get(b, 0.0) for b in blocks], height=height, label=model)
    ax.set_yticks([j + height * (len(models) - 1) / 2 for j in range(len(blocks))])
    ax.set_yticklabels(blocks, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("median time per block (ms), measured in place")
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


ROOF_COLOURS = {"fp32": "tab:blue", "bf16": "tab:orange", "int8": "tab:green"}


def roofline_plot(layers: list[dict], peaks: dict | None, path: Path, title: str = "") -> Path:
    """Each layer with MACs as a point (arithmetic intensity, achieved GMAC/s; size by time); the
    machine's roofs as lines: memory bandwidth rising to each precision's measured compute peak."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [r for r in layers if r.get("macs") and r.get("intensity") and r.get("gmacs_per_s")]
    total_ms = sum(r["latency_ms"] for r in layers) or 1.0
    xs = [r["intensity"] for r in points] or [0.1, 100.0]
    lo, hi = min(xs) / 3, max(xs) * 3
    if peaks:
        roofs = {"fp32": max(peaks["fp32_gemm_gmacs"], peaks["fp32_conv_gmacs"]), "bf16": peaks.get("bf16_gemm_gmacs"), "int8": peaks.get("int8_gemm_gmacs")}
        bandwidth = peaks["bandwidth_gbs"]
        used = {"fp32"} | {r.get("precision", "fp32") for r in points}
        for name, peak in roofs.items():
            if not peak or name not in used:  # a roof no layer runs under only crowds the plot
                continue
            ridge = peak / bandwidth
            lo, hi = min(lo, ridge / 3), max(hi, ridge * 3)
            ax.plot([lo, ridge, hi], [lo * bandwidth, peak, peak], c=ROOF_COLOURS[name], lw=1.2, label=f"{name} roof ({peak:.0f} GMAC/s)")
    kinds = sorted({r.get("kind", "") for r in points})
    markers = "osD^v<>ph*"
    for i, kind in enumerate(kinds):
        mine = [r for r in points if r.get("kind", "") == kind]
        ax.scatter([r["intensity"] for r in mine], [r["gmacs_per_s"] for r in mine],
                   s=[20 + 400 * r["latency_ms"] / total_ms for r in mine], marker=markers[i % len(markers)],
                   alpha=0.7, zorder=3, label=kind)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (MACs per byte of weights + activations)")
    ax.set_ylabel("achieved GMAC/s")
    ax.set_title(f"Roofline{': ' + title if title else ''} (point size: share of time)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)
