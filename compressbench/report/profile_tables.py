"""Seed 000's tables from a profile record."""

from __future__ import annotations

import pandas as pd

from compressbench.profiling.layout import op_family
from compressbench.report.render import Section

ENCODER_ROWS = ["conv", "batchnorm", "relu", "avgpool"]
DECODER_ROWS = ["interpolation", "conv", "batchnorm", "relu", "concat"]


def shape_text(shape) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def modules_frame(record: dict) -> pd.DataFrame:
    rows = [
        {"module": r["name"], "median_ms": r["latency_ms"], "p10_ms": r["p10"], "p90_ms": r["p90"], "share_pct": 100 * r["share"]}
        for r in record["modules"]
    ]
    lat = record["latency_ms"]
    rows.append({"module": "total", "median_ms": lat["median"], "p10_ms": lat["p10"], "p90_ms": lat["p90"], "share_pct": 100.0})
    return pd.DataFrame(rows)


def blocks_frame(record: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "block": b["name"],
                "input_shape": shape_text(b["input_shape"]),
                "output_shape": shape_text(b["output_shape"]),
                "params": b["params"],
                "macs": b["macs"],
            }
            for b in record["blocks"]
        ]
    )


def layer_frame(record: dict, prefix: str, ops: list[str]) -> pd.DataFrame | None:
    """Rows = ops, columns = ``{prefix}_1..n`` and their average (seed 000's layout)."""
    layers = [r for r in record["layers"] if r["block"].startswith(prefix + "_")]
    if not layers:
        return None
    blocks = sorted({r["block"] for r in layers}, key=lambda b: int(b.rsplit("_", 1)[1]))
    rows = []
    for op in ops:
        values: dict[str, float] = {}  # a swapped conv's pair (conv.depthwise + conv.pointwise) is one conv row
        for r in layers:
            if op_family(r["op"]) == op:
                values[r["block"]] = values.get(r["block"], 0.0) + r["latency_ms"]
        if not values:
            continue
        row = {"layer": op, **{b: values.get(b, float("nan")) for b in blocks}}
        row["average"] = sum(values.values()) / len(values)
        rows.append(row)
    return pd.DataFrame(rows)


def tree_frame(record: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "module": "  " * (r["depth"] - 1) + r["name"].rsplit(".", 1)[-1],
                "type": r["type"],
                "params": r["params"],
                "macs": r["macs"],
                "median_ms": r["latency_ms"],
                "share_pct": 100 * r["share"] if r["share"] is not None else None,
            }
            for r in record["tree"]
        ]
    )


def summary_frame(record: dict) -> pd.DataFrame:
    lat, env, att = record["latency_ms"], record["env"], record["attribution"]
    items = [
        ("model", record["model"]),
        ("params", record["params"]),
        ("macs (fvcore)", record["macs_fvcore"]),
        ("macs (thop)", record["macs_thop"]),
        ("weights size (MB = 10^6 B)", record["size_mb"]),
        ("latency median (ms)", lat["median"]),
        ("latency p10 / p90 (ms)", f"{lat['p10']:.3f} / {lat['p90']:.3f}"),
        ("runs (after warm-up)", f"{lat['runs']} (+{record['warmup']})"),
        ("input (B, C, H, W)", shape_text(record["input_shape"])),
        ("threads", record["threads"]),
        ("runtime", f"{env.get('runtime', 'torch')} {env.get('runtime_version', env['torch'])}"),
        ("precision (asked / used)", f"{env.get('precision', 'fp32')} / {env.get('precision_used', 'fp32')}"),
        ("instrumentation overhead", f"{att['overhead_pct']:+.1f}% (instrumented vs clean median)" if "overhead_pct" in att else "-"),
        ("torch", env["torch"]),
        ("cpu", env["cpu"]),
        ("machine", (env.get("machine") or {}).get("label", env["cpu"])),
        ("machine key", (env.get("machine") or {}).get("key", "-")),
        ("date", env["date"]),
    ]
    return pd.DataFrame([{"item": k, "value": v if isinstance(v, str) else v} for k, v in items]).astype({"value": object})


def health_line(record: dict) -> str | None:
    """One line when the measurement may lie (busy machine, time floor, CPU scaling); None if healthy."""
    health = record.get("health") or {}
    if not health.get("warnings"):
        return None
    return "measurement health: " + "; ".join(health["warnings"])


EFFICIENCY_TOP = 10


def efficiency_frame(record: dict, top: int = EFFICIENCY_TOP) -> pd.DataFrame:
    """The ``top`` layers by time with MACs, achieved GMAC/s, % of peak, intensity and bound."""
    e2e = record["latency_ms"]["median"] or 1.0
    layers = sorted(record["layers"], key=lambda r: -r["latency_ms"])[:top]
    rows = []
    for r in layers:
        pct = r.get("pct_of_peak")
        rows.append(
            {
                "layer": f"{r['block']}.{r['op']}",
                "kind": r.get("kind", ""),
                "precision": r.get("precision", ""),
                "median_ms": r["latency_ms"],
                "share_pct": 100 * r["latency_ms"] / e2e,
                "macs": r.get("macs"),
                "gmacs_per_s": r.get("gmacs_per_s"),
                "pct_of_peak": float("nan") if pct is None else pct,
                "macs_per_byte": r.get("intensity"),
                "bound": r.get("bound") or "-",
            }
        )
    return pd.DataFrame(rows)


def efficiency_notes(record: dict) -> list[str]:
    eff = record.get("efficiency") or {}
    notes = []
    if eff.get("why_not_faster"):
        notes.append(f"why not faster: {eff['why_not_faster']}")
    peaks = eff.get("peaks")
    if peaks:
        extra = "".join(
            f", {name} GEMM {peaks[key]:.1f}" for name, key in (("bf16", "bf16_gemm_gmacs"), ("int8", "int8_gemm_gmacs")) if peaks.get(key)
        )
        notes.append(
            f"peaks measured on this machine at {peaks['threads']} threads (GMAC/s): fp32 GEMM {peaks['fp32_gemm_gmacs']:.1f}, "
            f"fp32 3x3 conv {peaks['fp32_conv_gmacs']:.1f}{extra}; memory {peaks['bandwidth_gbs']:.1f} GB/s; "
            f"bound: compute when MACs per byte (weights + input + output) reach peak / bandwidth"
            + ("" if peaks.get("healthy", True) else "; peaks measured on a busy machine (not cached; likely below the real ones)")
        )
    else:
        notes.append("no machine peaks (--no-peaks): % of peak and bound left out")
    return notes


def attribution_line(record: dict) -> str:
    att = record["attribution"]
    if "unavailable" in att:
        return f"attribution: {att['unavailable']}; end-to-end median {att['end_to_end_ms']:.3f} ms"
    return (
        f"attribution: sum of per-layer medians {att['layers_sum_ms']:.3f} ms ({att['gap_pct']:+.1f}%), "
        f"sum of per-module medians {att['modules_sum_ms']:.3f} ms ({att['modules_gap_pct']:+.1f}%), "
        f"end-to-end median {att['end_to_end_ms']:.3f} ms"
    )


def profile_sections(record: dict, show_tree: bool = False) -> list[Section]:
    """The profile as report sections, in seed 000's order, then totals."""
    notes = [attribution_line(record)]
    env = record.get("env", {})
    if env.get("runtime", "torch") != "torch" and "unavailable" not in record["attribution"]:
        notes.append(
            f"per-op times from {env['runtime']}'s own profiler, mapped onto modules by the exported node names; "
            "the gap is what the runtime spends outside its timed ops (input/output copies, reorders it does not "
            "count, the call itself)"
        )
    sections = [Section("Per-module latency (ms)", modules_frame(record), notes)]
    hourglass = record.get("hourglass_layout", False)
    sections.append(Section("Per-block shapes, parameters, MACs (fvcore)" if hourglass else "Blocks", blocks_frame(record)))
    if hourglass:
        encoder = layer_frame(record, "downblock", ENCODER_ROWS)
        decoder = layer_frame(record, "upblock", DECODER_ROWS)
        if encoder is not None:
            sections.append(Section("Encoder per-layer latency (ms, median)", encoder))
        if decoder is not None:
            sections.append(Section("Decoder per-layer latency (ms, median)", decoder))
    if show_tree or not hourglass:
        sections.append(Section("Module tree", tree_frame(record)))
    if record.get("efficiency") is not None and record["layers"] and "gmacs_per_s" in record["layers"][0]:
        sections.append(Section(f"Per-layer efficiency (top {EFFICIENCY_TOP} layers by time)", efficiency_frame(record), efficiency_notes(record)))
    notes = list(record.get("macs_notes", []))
    line = health_line(record)
    if line:  # at the top, where it is read first
        sections[0].notes.insert(0, line)
    sections.append(Section("Totals", summary_frame(record), notes))
    return sections
