"""Sections (title + table + notes) for a comparison record: the comparison table, the per-module
side-by-side table, and one small section per compression stage report."""

from __future__ import annotations

import pandas as pd

from compressbench.report.render import Section, format_value, plural

# record key -> column label, in the order shown: what decides (speed, fidelity) first, so that on a
# narrow terminal the sizes and the method move into the continuation table, not the verdict
TABLE_COLUMNS = {
    "variant": "variant",
    "latency_ms": "latency_ms",
    "latency_p10": "p10_ms",
    "latency_p90": "p90_ms",
    "speedup": "speedup",
    "akd_px": "akd_px",
    "akd_px_ci95": "akd_ci95",
    "jacobian_error": "jac_err",
    "params": "params",
    "macs": "macs",
    "macs_int8": "int8",
    "size_mb": "size_mb",
    "peak_mem_mb": "peak_mb",
    "method": "method",
}
MAX_NOTE_CHARS = 160


def _nan(value):
    return float("nan") if value is None else value


def comparison_frame(record: dict) -> pd.DataFrame:
    rows = []
    for row in record["rows"]:
        out = {label: _nan(row.get(key)) for key, label in TABLE_COLUMNS.items()}
        out["int8"] = "yes" if row.get("macs_int8") else "no"
        rows.append(out)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS.values()))


def modules_frame(record: dict) -> pd.DataFrame:
    """Median ms and share (%) of each module group, two columns per model."""
    names = [row["variant"] for row in record["rows"]]
    rows = []
    for entry in record["modules"]:
        out = {"module": entry["module"]}
        for name in names:
            share = entry.get(f"{name}_share")
            out[f"{name} ms"] = _nan(entry.get(f"{name}_ms"))
            out[f"{name} %"] = float("nan") if share is None else 100 * share
        rows.append(out)
    return pd.DataFrame(rows)


def _comparison_notes(record: dict) -> list[str]:
    env = record["env"]
    warnings = (record.get("health") or {}).get("warnings")
    notes = ["measurement health: " + "; ".join(warnings)] if warnings else []
    notes += [
        f"{' '.join(str(p) for p in (env['runtime'], env.get('runtime_version'), env.get('precision', 'fp32')) if p)}, batch {env['batch']}, "
        f"input {tuple(env['input_shape'])}, {plural(env['threads'], 'thread')}, "
        f"median of {plural(env['repeats'], 'interleaved run')} after {plural(env['warmup'], 'warm-up round')}; "
        f"{(env.get('machine') or {}).get('label', env['cpu'])}, torch {env['torch']}",
        "speedup = teacher median / row median from the same interleaved run (speedup_vs_eager_fp32 in the JSON: "
        "against the teacher in eager fp32, same run); "
        f"akd_px and jac_err against the teacher on {plural(env['eval_frames'], 'held-out frame')}; "
        "akd_ci95: half-width of akd_px's 95% interval over those frames",
        "macs: fvcore, per frame; int8: the MACs run in 8-bit integers; size_mb: serialized state dict (10^6 bytes); "
        "peak_mb: peak CPU allocation of one inference (torch profiler); jac_err: mean |J - J_teacher|",
    ]
    return notes + list(record.get("notes", []))


def _short(value) -> str:
    text = format_value(value)
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 3] + "..."


def stage_sections(record: dict) -> list[Section]:
    """Per stage: a summary section (its scalar report entries, options as a note), then one table
    per report entry that is a list of records (e.g. per-layer approximation errors)."""
    sections = []
    for index, stage in enumerate(record.get("stages", []), start=1):
        report = stage.get("report") or {}
        tables = {k: v for k, v in report.items() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)}
        options = ", ".join(f"{k}={v}" for k, v in (stage.get("options") or {}).items()) or "(none)"
        summary = [{"item": k, "value": _short(v)} for k, v in report.items() if k not in tables]
        title = f"Stage {index}: {stage['method']}"
        sections.append(
            Section(title, pd.DataFrame(summary or [{"item": "options", "value": options}]), [f"options: {options}"])
        )
        sections += [Section(f"{title}: {key}", pd.DataFrame(entries)) for key, entries in tables.items()]
    return sections


def comparison_sections(record: dict) -> list[Section]:
    """The comparison table, the per-module side-by-side table, then the stage reports."""
    sections = [Section("Comparison", comparison_frame(record), _comparison_notes(record))]
    if record.get("modules"):
        sections.append(
            Section(
                "Per-module latency, side by side (ms median, % of that model's end-to-end median)",
                modules_frame(record),
                ["measured in place with module hooks, PyTorch eager, interleaved with the rows above"],
            )
        )
    return sections + stage_sections(record)
