"""``write_report``: a Markdown report (tables and pictures) from a bench results file."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd

import compressbench.records as records
from compressbench.data import frames_for
from compressbench.files import write_atomic
from compressbench.profiling.layout import forward_order
from compressbench.report.comparison_tables import comparison_frame
from compressbench.report.overlays import overlay, to_uint8_hwc, with_legend
from compressbench.report.pareto import best_variant, most_faithful, pareto_front
from compressbench.report.plots import layer_bars, pareto_plot, roofline_plot
from compressbench.report.profile_tables import DECODER_ROWS, ENCODER_ROWS, layer_frame, shape_text
from compressbench.report.render import Section, render_markdown

MAX_SIDE_BY_SIDE = 4


def read_results(path: str | Path) -> records.ResultsRecord:
    """The results file of ``compressbench bench`` (or a comparison of ``compress``/``search``), checked
    section by section before anything is written, as a results record (it reads like its JSON)."""
    return records.read_report_input(path)


def _chosen(rows: list[dict], front: list[str], best: str | None) -> list[str]:
    names = [rows[0]["variant"]]
    for name in ([best] if best else []) + front:
        if name and name not in names:
            names.append(name)
    return names[:MAX_SIDE_BY_SIDE]


def environment_section(results: dict) -> Section:
    env = results["env"]
    items = [(k, env.get(k)) for k in ("cpu", "cpu_count", "threads", "torch", "python", "platform", "date", "runtime", "batch", "input_shape", "eval_frames", "warmup", "repeats")]
    machine = env.get("machine") or {}
    if machine:  # the fingerprint: what decides whether these timings compare with another report's
        items[1:1] = [("machine", machine.get("label")), ("machine key", machine.get("key"))]
    frame = pd.DataFrame([{"item": k, "value": str(v)} for k, v in items if v is not None])
    return Section("Environment", frame, [f"suite: `{results['suite']}`"])


def modules_side_by_side(results: dict, names: list[str]) -> Section:
    rows = []
    for entry in results["comparison"]["modules"]:
        row = {"module": entry["module"]}
        for name in names:
            ms, share = entry.get(f"{name}_ms"), entry.get(f"{name}_share")
            row[f"{name} ms"] = float("nan") if ms is None else ms
            row[f"{name} %"] = float("nan") if share is None else 100 * share
        rows.append(row)
    return Section("Per-module latency, side by side (the blog's per-module table)", pd.DataFrame(rows),
                   ["medians in ms measured in place, interleaved in one process; % of each model's own end-to-end median"])


def blocks_side_by_side(results: dict, names: list[str]) -> Section | None:
    profiles = results.get("profiles", {})
    reference = profiles.get(names[0])
    if not reference:
        return None
    rows = []
    for block in reference["blocks"]:
        row = {"block": block["name"], "in -> out": f"{shape_text(block['input_shape'])} -> {shape_text(block['output_shape'])}"}
        for name in names:
            match = next((b for b in profiles.get(name, {}).get("blocks", []) if b["name"] == block["name"]), None)
            row[f"{name} params"] = match["params"] if match else float("nan")
            row[f"{name} out"] = shape_text(match["output_shape"]) if match else "-"
        rows.append(row)
    return Section("Hourglass blocks: shapes and parameters (the blog's hourglass table)", pd.DataFrame(rows))


def layer_sections(results: dict, names: list[str]) -> list[Section]:
    sections = []
    for name in names:
        prof = results.get("profiles", {}).get(name)
        if not prof or not prof.get("hourglass_layout"):
            continue
        for prefix, ops, label in (("downblock", ENCODER_ROWS, "encoder"), ("upblock", DECODER_ROWS, "decoder")):
            frame = layer_frame(prof, prefix, ops)
            if frame is not None:
                sections.append(Section(f"{name}: {label} per-layer latency (ms, median; the blog's per-layer tables)", frame))
    return sections


def time_per_block(profile_record: dict) -> dict[str, float]:
    """Summed per-layer medians by block label (the teacher's names, whatever the variant)."""
    out: dict[str, float] = {}
    for layer in profile_record.get("layers", []):
        out[layer["block"]] = out.get(layer["block"], 0.0) + layer["latency_ms"]
    return out


def block_bars_data(results: dict, names: list[str]) -> dict[str, dict[str, float]]:
    """What the per-block chart plots: {model: {block: ms}}, blocks in the first model's order and
    every model given each of them (0.0 where it has no such block), in the order the detector runs them."""
    per_model = {name: time_per_block(results["profiles"][name]) for name in names}
    order: list[str] = []
    for values in per_model.values():
        order += [b for b in values if b not in order]
    order = forward_order(order)
    return {name: {b: values.get(b, 0.0) for b in order} for name, values in per_model.items()}


def overlay_strip(results: dict, reference: str, variant: str, path: Path) -> Path | None:
    """Frames with the variant's keypoints (red discs) and the reference's (cyan rings) side by side, a legend beneath."""
    spec = results.get("overlays") or {}
    points = spec.get("points", {})
    if variant not in points or reference not in points or not spec.get("count"):
        return None
    frames = frames_for(spec["data"], spec["count"], split=spec["split"], seed=spec["seed"], size=spec["size"])
    tiles = [
        overlay(frames.images[i], np.asarray(points[variant][i]), np.asarray(points[reference][i]))
        for i in range(min(spec["count"], len(frames)))
    ]
    strip = to_uint8_hwc(with_legend(np.concatenate(tiles, axis=2), variant, reference))
    return write_atomic(path, iio.imwrite("<bytes>", strip, extension=".png"))


def efficiency_part(results: dict, names: list[str], out: Path, stem: str) -> tuple[str, list[Path]]:
    """A roofline per profiled variant that carries machine peaks, and its "why not faster" sentence.
    Empty where the profiles were taken without peaks."""
    parts, written = [], []
    for name in dict.fromkeys(names):
        prof = results.get("profiles", {}).get(name) or {}
        eff = prof.get("efficiency") or {}
        if not eff.get("peaks"):
            continue
        png = roofline_plot(prof["layers"], eff["peaks"], out.with_name(f"{stem}-roofline-{name.lower().replace('/', '-')}.png"), title=name)
        written.append(png)
        why = f"\n\nWhy not faster: {eff['why_not_faster']}" if eff.get("why_not_faster") else ""
        parts.append(f"## Roofline: `{name}`\n\n![roofline]({png.name}){why}\n")
    return "\n".join(parts), written


def write_report(results: dict, out: str | Path, akd_budget_px: float = 1.0, command: str | None = None) -> list[Path]:
    """Write ``out`` (Markdown) and its PNGs next to it; returns every path written. A failure
    part-way removes what was already written: a report is whole or absent."""
    written: list[Path] = []
    try:
        return _write_report(results, Path(out), akd_budget_px, command, written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _write_report(results: dict, out: Path, akd_budget_px: float, command: str | None, written: list[Path]) -> list[Path]:
    out = Path(out)
    rows = results["comparison"]["rows"]
    reference = rows[0]["variant"]
    front = pareto_front(rows)
    best = best_variant(rows, akd_budget_px)
    names = _chosen(rows, front, best)
    stem = out.stem.lower()
    pareto_png = pareto_plot(rows, front, best, out.with_name(f"{stem}-pareto.png"))
    written.append(pareto_png)
    parts = ["# compressbench report\n"]
    if command:
        parts.append(f"Produced by `{command}` from `{results['suite']}`.\n")
    best_row = next((r for r in rows if r["variant"] == best), None)
    if best_row:
        parts.append(
            f"**Best variant within {akd_budget_px:g} px AKD: `{best}`** — {best_row['speedup']:.2f}x the speed of `{reference}`, "
            f"AKD {best_row['akd_px']:.3f} px, jacobian error {best_row['jacobian_error']:.4f}, {best_row['params']:,} parameters, "
            f"{best_row['size_mb']:.2f} MB.\n"
        )
    elif (faithful := most_faithful(rows)) is not None:
        parts.append(
            f"**No variant within {akd_budget_px:g} px AKD.** The most faithful, `{faithful['variant']}`, is at "
            f"{faithful['akd_px']:.3f} px" + (f" ({faithful['speedup']:.2f}x the speed of `{reference}`)" if faithful.get("speedup") else "")
            + ".\n"
        )
    sections = [environment_section(results), Section("All variants", comparison_frame(results["comparison"]), results["comparison"].get("notes", []))]
    parts.append(render_markdown(sections, heading_level=2))
    parts.append(f"## Latency against fidelity\n\n![Pareto plot]({pareto_png.name})\n\nPareto front: {', '.join(f'`{n}`' for n in front)}.\n")
    side = [modules_side_by_side(results, names)] if results["comparison"].get("modules") else []
    blocks = blocks_side_by_side(results, names)
    if blocks is not None:
        side.append(blocks)
    side += layer_sections(results, [reference] + ([best] if best else []))
    parts.append(render_markdown(side, heading_level=2))
    if best and results.get("profiles", {}).get(best):
        bars = layer_bars(block_bars_data(results, [reference, best]), out.with_name(f"{stem}-layers.png"))
        written.append(bars)
        parts.append(f"## Where the time goes: `{reference}` against `{best}`\n\n![per-block time]({bars.name})\n")
    efficiency_md, efficiency_pngs = efficiency_part(results, [reference] + ([best] if best else []), out, stem)
    written += efficiency_pngs
    if efficiency_md:
        parts.append(efficiency_md)
    if best:
        strip = overlay_strip(results, reference, best, out.with_name(f"{stem}-overlays.png"))
        if strip is not None:
            written.append(strip)
            parts.append(
                f"## Keypoints: `{best}` (red discs) against `{reference}` (cyan rings)\n\n![overlays]({strip.name})\n\n"
                "Held-out test frames; yellow lines join matching keypoints.\n"
            )
    written.insert(0, write_atomic(out, "\n".join(parts)))
    return written
