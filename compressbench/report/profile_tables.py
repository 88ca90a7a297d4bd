"""Seed 000's tables from a profile record."""

from __future__ import annotations

import pandas as pd

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
        values = {r["block"]: r["latency_ms"] for r in layers if r["op"] == op}
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
        ("date", env["date"]),
    ]
    return pd.DataFrame([{"item": k, "value": v if isinstance(v, str) else v} for k, v in items]).astype({"value": object})


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
    notes = list(record.get("macs_notes", []))
    sections.append(Section("Totals", summary_frame(record), notes))
    return sections
