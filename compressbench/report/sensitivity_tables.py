"""The tables of ``compressbench sensitivity``: one row per layer, then the mixed-precision result."""

from __future__ import annotations

import pandas as pd

from compressbench.report.render import Section


def _px(value: float | None) -> float | None:
    return None if value is None else float(value)


def layer_section(record: dict) -> Section:
    """Per layer: its MACs share, AKD with only it int8, AKD with all but it int8, kept float in the mix."""
    rows = [
        {
            "layer": layer["layer"],
            "macs_share_pct": None if layer["macs_share"] is None else 100.0 * layer["macs_share"],
            "akd_only_this_int8_px": _px(layer["akd_only_int8_px"]),
            "akd_all_but_this_int8_px": _px(layer["akd_all_but_px"]),
            "drop_px": record["akd_int8_px"] - layer["akd_all_but_px"],
            "float_in_mix": "yes" if layer["float_in_mixed"] else "",
        }
        for layer in record["layers"]
    ]
    notes = [
        f"{record['runtime']} {record['runtime_version']} int8 ({record['calibration_method']} calibration on "
        f"{record['calibration_frames']} calibration frames); AKD against {record['reference']} (eager fp32) on "
        f"{record['eval_frames']} held-out {record['image_size']} px frames",
        f"all int8: {record['akd_int8_px']:.4f} px; all float ({record['runtime']} fp32): {record['akd_fp32_px']:.4f} px; "
        "drop = all-int8 AKD minus all-but-this AKD (what keeping the layer float buys back)",
    ]
    if not record["settings"].get("only_int8_pass", True):
        notes.append("the only-this-layer-int8 pass was skipped")
    chain = ",".join(record["chain"]) or "none"
    return Section(f"Per-layer int8 sensitivity of {record['model']} (chain: {chain})", pd.DataFrame(rows), notes)


def mixed_section(record: dict) -> Section:
    """The mix the greedy search chose, against all-int8 and all-float, with latency when timed."""
    mixed, latency = record["mixed"], record.get("latency_ms") or {}
    fp32 = latency.get("fp32", {}).get("median")

    def row(name: str, floats: str, akd: float | None, key: str) -> dict:
        median = latency.get(key, {}).get("median")
        return {"variant": name, "float_layers": floats, "akd_px": akd, "latency_ms": median,
                "speedup_vs_fp32": fp32 / median if fp32 and median else None}  # fmt: skip

    rows = [row("all int8", "none", record["akd_int8_px"], "int8")]
    if mixed["within_bound"]:
        rows.append(row("mixed", ", ".join(mixed["float_layers"]) or "none", mixed["akd_px"], "mixed"))
    rows.append(row("all float (fp32)", "all", record["akd_fp32_px"], "fp32"))
    notes = []
    if mixed["within_bound"]:
        stage = mixed["stage"]["options"]
        notes.append(f"within {mixed['max_akd_px']:g} px with {len(mixed['float_layers'])} of {len(record['layers'])} "
                     f"layers float ({mixed['float_precision']}); append the stage: --method <chain>,mixed "
                     f"--set mixed.float_layers={stage['float_layers']}"
                     + (f" --set mixed.float_precision={stage['float_precision']}" if stage["float_precision"] != "fp32" else ""))  # fmt: skip
    if mixed.get("note"):
        notes.append(mixed["note"])
    read_back = (record["runs"].get("mixed") or {}).get("float_layers")
    if read_back is not None:
        notes.append(f"read back from {record['runtime']}: float layers {', '.join(read_back) or 'none'}")
    if latency:
        runs = latency.get("int8", {}).get("runs")
        notes.append(f"latency: medians of {runs} interleaved runs each, same process, batch 1, "
                     f"{record['settings']['threads']} threads")  # fmt: skip
    notes += record.get("notes") or []
    return Section(f"Mixed precision within {mixed['max_akd_px']:g} px on {record['runtime']}", pd.DataFrame(rows), notes)


def sensitivity_sections(record: dict) -> list[Section]:
    return [layer_section(record), mixed_section(record)]
