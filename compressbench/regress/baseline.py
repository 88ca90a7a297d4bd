"""Baseline files and the check that compares fresh measurements against them."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.profiling import count_macs, count_params, environment
from compressbench.progress import progress_bar
from compressbench.regress.measure import RULER, Samples, architecture_fingerprint, measure_relative
from compressbench.regress.settings import CheckSettings
from compressbench.regress.stats import INCONCLUSIVE, PASS, REGRESSION, STATUS_NAMES, decide_with_remeasure, gate_counts

FORMAT = "compressbench-baseline/1"


def deterministic_counts(module: nn.Module, settings: CheckSettings) -> dict:
    """Params (packed int8 weights included) and fvcore MACs; MACs are None where fvcore cannot
    trace the module (int8 kernels)."""
    example = torch.rand(settings.batch, 3, settings.input_size, settings.input_size)
    return {"params": count_params(module), "macs": count_macs(module, example)}


def baseline_entry(name: str, spec: dict, module: nn.Module, settings: CheckSettings, show_progress: bool = True) -> dict:
    with progress_bar(f"baseline {name}", settings.warmup + settings.repeats, show_progress) as advance:
        samples = measure_relative(module, settings, on_round=lambda _: advance())
    return {
        "name": name,
        "spec": spec,
        "fingerprint": architecture_fingerprint(module),
        **deterministic_counts(module, settings),
        "samples": samples.to_dict(),
    }


def create_baseline(suite, settings: CheckSettings, show_progress: bool = True) -> dict:
    """Build every variant of ``suite`` and record its ruler-relative latency samples."""
    from dataclasses import asdict

    from compressbench.suite import build_variant

    entries = []
    for spec in suite.variants:
        variant = build_variant(spec, suite.measure, show_progress=show_progress)
        entries.append(baseline_entry(spec.name, asdict(spec), variant.module, settings, show_progress))
    return {
        "format": FORMAT, "ruler": RULER, "suite": str(suite.path), "settings": settings.__dict__,
        "env": environment(settings.threads), "entries": entries,
    }  # fmt: skip


def read_baseline(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CompressbenchError(f"baseline file {path} does not exist; create it with 'compressbench baseline'")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"baseline file {path} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        raise CompressbenchError(f"{path} is not a compressbench baseline (format {FORMAT!r})")
    if doc.get("ruler") != RULER:
        raise CompressbenchError(
            f"{path} holds ratios to the ruler {doc.get('ruler') or 'of earlier versions'}, and this compressbench "
            f"measures against {RULER}; record the baseline again with 'compressbench baseline'"
        )
    for entry in doc["entries"]:
        if not {"name", "fingerprint", "params", "samples"} <= set(entry):
            raise CompressbenchError(f"baseline file {path}: entry {entry.get('name', '?')!r} is incomplete")
    return doc


def pick_entry(baseline: dict, module: nn.Module, label: str, entry_name: str | None) -> dict:
    """The baseline entry a given model is checked against; another architecture is a usage error."""
    entries = baseline["entries"]
    names = [e["name"] for e in entries]
    fingerprint = architecture_fingerprint(module)
    if entry_name is not None:
        matches = [e for e in entries if e["name"] == entry_name]
        if not matches:
            raise CompressbenchError(f"baseline has no entry {entry_name!r}; entries: {', '.join(names)}")
        chosen = matches[0]
    else:
        same = [e for e in entries if e["fingerprint"] == fingerprint]
        by_name = [e for e in same if e["name"] == label]
        if by_name or len(same) == 1:
            chosen = (by_name or same)[0]
        elif not same:
            raise CompressbenchError(
                f"the baseline holds no model of {label}'s architecture (entries: {', '.join(names)}); record a baseline for it first"
            )
        else:
            raise CompressbenchError(f"several baseline entries share {label}'s architecture; pick one with --entry ({', '.join(e['name'] for e in same)})")
    if chosen["fingerprint"] != fingerprint:
        raise CompressbenchError(
            f"baseline entry {chosen['name']!r} is another model architecture than {label}; compare like with like"
        )
    return chosen


def check_module(entry: dict, module: nn.Module, settings: CheckSettings, show_progress: bool = True) -> dict:
    """Decide one entry: exact gate on counts, then the latency decision with re-measurement."""
    counts = deterministic_counts(module, settings)
    count_status, count_reason = gate_counts(entry, counts)

    def measure() -> Samples:
        with progress_bar(f"check {entry['name']}", settings.warmup + settings.repeats, show_progress) as advance:
            return measure_relative(module, settings, on_round=lambda _: advance())

    baseline_ratios = Samples.from_dict(entry["samples"]).ratios
    decision, samples = decide_with_remeasure(baseline_ratios, measure, settings)
    if settings.latency == "advisory":
        status = count_status
    else:
        status = REGRESSION if REGRESSION in (count_status, decision.status) else decision.status
    return {
        "name": entry["name"],
        "status": STATUS_NAMES[status],
        "exit_code": status,
        "counts": {"status": STATUS_NAMES[count_status], "reason": count_reason, **counts, "baseline_params": entry["params"], "baseline_macs": entry.get("macs")},
        "latency": decision.to_dict(),
        "samples": [s.to_dict() for s in samples],
    }


def overall_exit(results: list[dict]) -> int:
    """Regression beats inconclusive beats pass."""
    codes = {r["exit_code"] for r in results}
    for code in (REGRESSION, INCONCLUSIVE):
        if code in codes:
            return code
    return PASS


def run_check(baseline: dict, settings: CheckSettings, modules: dict[str, nn.Module], show_progress: bool = True) -> dict:
    """Check ``modules`` ({entry name: module}) against their baseline entries."""
    by_name = {e["name"]: e for e in baseline["entries"]}
    results = [check_module(by_name[name], module, settings, show_progress) for name, module in modules.items()]
    return {"results": results, "exit_code": overall_exit(results), "settings": settings.__dict__, "env": environment(settings.threads)}
