"""Baseline files and the check that compares fresh measurements against them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from compressbench.comparison.macs import variant_macs
from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, read_error
from compressbench.profiling import count_params, environment
from compressbench.profiling.health import Health, check_health, ruler_warning
from compressbench.profiling.machine import MachineFingerprint, MachineMatch, compare_machines, this_machine
from compressbench.progress import progress_bar
from compressbench.provenance import Provenance, Variant
from compressbench.records import LatencySummary
from compressbench.regress.measure import (
    EAGER_FP32,
    RULER,
    Samples,
    architecture_fingerprint,
    measure_relative,
    timed_call,
)
from compressbench.regress.records import (  # noqa: F401  (the file format, re-exported)
    ENTRY_KEYS,
    FORMAT,
    FORMAT_V1,
    SPEC_KEYS,
    BaselineEntry,
    BaselineRecord,
    MachineBaseline,
    as_baseline,
    baseline_problem,
    entry_problem,
)
from compressbench.regress.settings import CheckSettings
from compressbench.regress.stats import STATUS_NAMES, decide_with_remeasure, gate_counts, worst
from compressbench.runtimes.deployed import DeployedModel
from compressbench.suite import build_variant

_entry_problem, _baseline_problem = entry_problem, baseline_problem  # the names they had here
LATENCY_ADVISORY_HINT = "latency advisory (pass --latency strict to gate it anyway)"


def deterministic_counts(module: nn.Module, settings: CheckSettings, provenance: Provenance | None = None) -> dict:
    """Params (packed int8 weights included) and fvcore MACs, an int8 module's counted on the float
    model it was quantized from (its ``provenance``), as comparisons count them; None only where
    neither can be traced."""
    example = torch.rand(settings.batch, 3, settings.input_size, settings.input_size)
    return {"params": count_params(module), "macs": variant_macs(module, provenance, example)[0]}


def settings_for(module: nn.Module, settings: CheckSettings) -> CheckSettings:
    """``settings`` at the frame side ``module`` takes: a deployed file (.onnx, .xml, .pte, an export
    folder) is measured and counted at the size it was compiled for, whatever ``input_size`` says."""
    from dataclasses import replace

    fixed = getattr(module, "fixed_input_size", None)
    return settings if fixed is None or fixed == settings.input_size else replace(settings, input_size=int(fixed))


def as_variant(name: str, model: nn.Module | Variant) -> Variant:
    """A check or baseline target as a Variant (a bare module has no provenance: counted as it is)."""
    return model if isinstance(model, Variant) else Variant(name, model)


def entry_runtime(entry: dict) -> tuple[str, str]:
    """(runtime, precision) a baseline entry was measured with; entries recorded before runtimes
    were recorded were measured in eager fp32."""
    recorded = entry.get("runtime")
    if not recorded:
        return EAGER_FP32
    return recorded["runtime"], recorded["precision_requested"]


def baseline_runtimes(baseline: dict) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs a baseline's entries were measured with, in entry order."""
    return list(dict.fromkeys(entry_runtime(e) for e in baseline["entries"]))


def runtime_label(pair: tuple[str, str]) -> str:
    return " ".join(pair)


def baseline_entry(
    name: str, spec: dict, model: nn.Module | Variant, settings: CheckSettings, show_progress: bool = True,
    runtime: str = "torch", precision: str = "fp32",
) -> BaselineEntry:  # fmt: skip
    """One entry: ``model`` measured on ``runtime`` at ``precision``, which the entry records."""
    variant = as_variant(name, model)
    module = variant.module
    settings = settings_for(module, settings)
    call, record = timed_call(module, settings, runtime, precision, label=name)
    with progress_bar(f"baseline {name}", settings.warmup + settings.repeats, show_progress) as advance:
        samples = measure_relative(module, settings, on_round=lambda _: advance(), call=call)
    return BaselineEntry(
        name=name, spec=spec, fingerprint=architecture_fingerprint(module), samples=samples, runtime=record.to_dict(),
        **deterministic_counts(module, settings, variant.provenance),
    )  # fmt: skip


def create_baseline(
    suite, settings: CheckSettings, show_progress: bool = True, runtime: str = "torch", precision: str = "fp32",
    health: Health | None = None,
) -> BaselineRecord:
    """Build every variant of ``suite`` and record its ruler-relative latency samples on ``runtime``
    at ``precision``: a baseline file holding one baseline, this machine's, with the ``health`` of
    the machine it was measured on (checked here when not given)."""
    from dataclasses import asdict

    entries = []
    for spec in suite.variants:
        variant = build_variant(spec, suite.measure, show_progress=show_progress)
        entries.append(baseline_entry(spec.name, asdict(spec), variant, settings, show_progress, runtime, precision))
    env = environment(settings.threads)
    measure = {**suite.measure, "runtime": runtime, "precision": precision}
    one = MachineBaseline(
        ruler=RULER, suite=str(suite.path), settings=dict(settings.__dict__), measure=measure, machine=env["machine"],
        env=env, entries=tuple(entries), health=(health or check_health(settings.threads)).to_dict(),
    )  # fmt: skip
    return BaselineRecord((one,))


def record_baseline(
    suite, settings: CheckSettings, *, runtime: str = "torch", precision: str = "fp32", force: bool = False,
    add_to: BaselineRecord | None = None, add: bool = False, show_progress: bool = True,
) -> tuple[BaselineRecord, list[str]]:
    """Check this machine's health, then :func:`create_baseline`; with ``add``, the result joins the
    baselines of ``add_to`` (another machine's stay, this machine's is replaced). An unhealthy
    machine (busy, throttled) is refused unless ``force``. Returns the file and notes for the user."""
    health = check_health(settings.threads)
    notes = []
    if not health.healthy:
        if not force:
            raise CompressbenchError(f"not recording a baseline: {health.line()}; wait for a quiet machine or pass --force")
        notes.append(f"{health.line()} (recorded anyway: --force)")
    doc = create_baseline(suite, settings, show_progress, runtime, precision, health=health)
    if add:
        doc, replaced = add_baseline(add_to, doc)
        notes += replaced
    return doc, notes


def machine_key(baseline: dict) -> str | None:
    return (baseline.get("machine") or {}).get("key")


def add_baseline(existing: BaselineRecord | dict | None, new: BaselineRecord | dict) -> tuple[BaselineRecord, list[str]]:
    """``existing``'s baselines with ``new``'s added, replacing any of the same machine fingerprint
    measured on the same runtimes and precisions (a machine keeps one baseline per runtime).
    Baselines measured against another ruler are dropped (their ratios compare with nothing).
    Returns the file and notes on what was replaced or dropped."""
    notes = []
    added = new["baselines"]
    keys = {(machine_key(b), tuple(baseline_runtimes(b))) for b in added}
    kept = []
    for old in (existing or {}).get("baselines", []):
        label = (old.get("machine") or {}).get("label") or (old.get("env") or {}).get("cpu", "an unknown machine")
        if old.get("ruler") != RULER:
            notes.append(f"dropped the baseline of {label} (measured against ruler {old.get('ruler') or 'of an earlier version'})")
        elif not machine_key(old):
            notes.append(f"dropped the baseline of {label} (no machine fingerprint: it can never gate latency; re-record it on its machine)")
        elif (machine_key(old), tuple(baseline_runtimes(old))) in keys:
            notes.append(f"replaced the baseline of {label}")
        else:
            kept.append(old)
    return BaselineRecord(tuple(as_baseline(b) for b in [*kept, *added])), notes


def _load_json(path: Path) -> object:
    check_input_file(path, "baseline file", "create it with 'compressbench baseline'")
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise read_error(path, exc, "baseline file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"baseline file {path} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None


def read_baseline_file(path: str | Path) -> BaselineRecord:
    """A baseline file (:class:`~compressbench.regress.records.BaselineRecord`), checked entry by
    entry; a version-1 file (one baseline, no machine fingerprint) becomes a file of one, ``legacy``."""
    path = Path(path)
    return BaselineRecord.from_json(_load_json(path), path)


def select_baseline(
    doc: BaselineRecord | dict, machine: MachineFingerprint, threads: int, path: str | Path = "baseline",
    runtime: tuple[str, str] | None = None,
) -> MachineBaseline:  # fmt: skip
    """The baseline of ``doc`` to check against on ``machine`` with ``threads`` (and, when given,
    measured on ``runtime``, a (runtime, precision) pair): this machine's fingerprint (and thread
    count) when the file has it, else the first, marked as from another machine. The result is that
    baseline (its entries of ``runtime`` only) with ``match`` (:class:`MachineMatch` as a dict) set."""
    usable = [b for b in doc["baselines"] if b.get("ruler") == RULER]
    if not usable:
        ruler = next((b.get("ruler") for b in doc["baselines"] if b.get("ruler")), None)
        raise CompressbenchError(
            f"{path} holds ratios to the ruler {ruler or 'of earlier versions'}, and this compressbench "
            f"measures against {RULER}; record the baseline again with 'compressbench baseline'"
        )
    if runtime is not None:
        recorded = list(dict.fromkeys(pair for b in usable for pair in baseline_runtimes(b)))
        usable = [b for b in usable if runtime in baseline_runtimes(b)]
        if not usable:
            raise CompressbenchError(
                f"{path} holds no baseline measured on {runtime_label(runtime)} (it holds: "
                f"{', '.join(map(runtime_label, recorded))}); record one with 'compressbench baseline "
                f"--runtime {runtime[0]} --precision {runtime[1]} --add'"
            )
    mine = [b for b in usable if machine_key(b) == machine.key]
    same_threads = [b for b in mine if int(b.get("settings", {}).get("threads", threads)) == threads]
    # Without this machine's own baseline, the nearest one is shown (its latency only advises):
    # a fingerprinted one of the same CPU model, then of the same vendor, then any; a name-only one last.
    nearest = sorted(usable, key=lambda b: _distance(b, machine))
    chosen = (same_threads or mine or nearest)[0]
    match = compare_machines(chosen.get("machine"), machine, chosen.get("settings", {}).get("threads"), threads,
                             reference_cpu=(chosen.get("env") or {}).get("cpu"))
    notes = list(match.notes)
    if not mine and len(usable) > 1:
        labels = ", ".join((b.get("machine") or {}).get("label") or (b.get("env") or {}).get("cpu", "?") for b in usable)
        notes.append(f"no baseline for this machine among {len(usable)} ({labels}); add one with 'compressbench baseline --add'")
    match = MachineMatch(match.same_cpu, match.same_threads, tuple(notes))
    chosen = as_baseline(chosen)
    entries = tuple(e for e in chosen.entries if runtime is None or entry_runtime(e) == runtime)
    return replace(chosen, entries=entries, match=match.to_dict())


def _distance(baseline: dict, machine: MachineFingerprint) -> tuple[int, int]:
    """How far a baseline's machine is from ``machine``: 0 same model, 1 same vendor, 2 another
    vendor, 3 no fingerprint; then the number of speed features they do not share."""
    recorded = baseline.get("machine")
    if not recorded:
        return 3, 0
    ref = MachineFingerprint.from_dict(recorded)
    rank = 0 if ref.cpu_model == machine.cpu_model else 1 if ref.vendor == machine.vendor else 2
    return rank, len(set(ref.features) ^ set(machine.features))


def read_baseline(
    path: str | Path, machine: MachineFingerprint | None = None, threads: int | None = None,
    runtime: tuple[str, str] | None = None,
) -> MachineBaseline:  # fmt: skip
    """The baseline in ``path`` that fits ``machine`` (this one by default) at ``threads`` (and
    ``runtime``, a (runtime, precision) pair, when given)."""
    import torch

    threads = threads if threads is not None else torch.get_num_threads()
    machine = machine if machine is not None else this_machine(threads)
    return select_baseline(read_baseline_file(path), machine, threads, path, runtime)


def effective_latency(mode: str, match: dict | None) -> str:
    """``gate`` gates latency only where the machine and threads match the baseline's; ``strict``
    always; ``advisory`` never. Returns ``gate`` or ``advisory``."""
    if mode == "strict":
        return "gate"
    if mode == "advisory":
        return "advisory"
    return "gate" if match is None or match.get("comparable", True) else "advisory"


def headline(match: dict | None, mode: str) -> str | None:
    """The one line a check prints first when its numbers do not compare like with like."""
    if not match or not match.get("notes"):
        return None
    effect = LATENCY_ADVISORY_HINT if effective_latency(mode, match) == "advisory" and not match.get("comparable", True) else (
        "latency gated anyway (--latency strict)" if mode == "strict" and not match.get("comparable", True) else "")
    return "; ".join(list(match["notes"]) + ([effect] if effect else []))


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
    if isinstance(module, DeployedModel) and entry_runtime(chosen)[0] != module.runtime:  # it runs there only
        raise CompressbenchError(
            f"baseline entry {chosen['name']!r} was measured on {entry_runtime(chosen)[0]} and {label} runs on "
            f"{module.runtime}; check it against an entry of a file that runs there"
        )
    return chosen


def check_module(entry: dict, model: nn.Module | Variant, settings: CheckSettings, show_progress: bool = True) -> dict:
    """Decide one entry: exact gate on counts, then the latency decision with re-measurement, on
    the runtime and precision the entry was measured with."""
    variant = as_variant(entry["name"], model)
    module = variant.module
    settings = settings_for(module, settings)
    counts = deterministic_counts(module, settings, variant.provenance)
    count_status, count_reason = gate_counts(entry, counts)
    call, record = timed_call(module, settings, *entry_runtime(entry), label=entry["name"])

    def measure() -> Samples:
        with progress_bar(f"check {entry['name']}", settings.warmup + settings.repeats, show_progress) as advance:
            return measure_relative(module, settings, on_round=lambda _: advance(), call=call)

    recorded = Samples.from_dict(entry["samples"])
    decision, samples = decide_with_remeasure(recorded.ratios, measure, settings)
    status = count_status if settings.latency == "advisory" else worst(count_status, decision.status)
    return {
        "name": entry["name"],
        "status": STATUS_NAMES[status],
        "exit_code": status,
        "counts": {"status": STATUS_NAMES[count_status], "reason": count_reason, **counts, "baseline_params": entry["params"], "baseline_macs": entry.get("macs")},
        "latency": decision.to_dict(),
        # the model's own ms then and now (the decision uses ratios to the ruler: these compare on one machine only)
        "latency_ms": {"baseline": recorded.latency().to_json(),
                       "measured": LatencySummary.from_samples(ms for s in samples for ms in s.model_ms).to_json()},
        "runtime": record.to_dict(),
        "samples": [s.to_dict() for s in samples],
    }


def check_entry_runtimes(entries: list[dict]) -> None:
    """Every runtime the entries were measured with is known and installed here, before any work
    (unknown: the registry's error; not installed: RuntimeMissing, exit 2)."""
    from compressbench.runtimes import check_runtime

    for runtime, precision in dict.fromkeys(map(entry_runtime, entries)):
        check_runtime(runtime, precision)


def overall_exit(results: list[dict]) -> int:
    """Regression beats inconclusive beats pass."""
    return worst(*(r["exit_code"] for r in results))


def run_check(
    baseline: dict, settings: CheckSettings, modules: dict[str, nn.Module | Variant], show_progress: bool = True,
    health: Health | None = None,
) -> dict:
    """Check ``modules`` ({entry name: module}) against their baseline entries. ``baseline`` is one
    baseline (from :func:`read_baseline`); its ``match`` decides whether latency gates or advises.
    ``health`` is the machine's before timing (the ruler's drift since the baseline is added)."""
    from dataclasses import replace

    if not modules:
        raise CompressbenchError("nothing to check: the baseline has no entry that can be rebuilt here (none records its spec); "
                                 "record it again with 'compressbench baseline', or name a model with --model")
    match = baseline.get("match")
    effective = replace(settings, latency=effective_latency(settings.latency, match))
    by_name = {e["name"]: e for e in baseline["entries"]}
    check_entry_runtimes([by_name[name] for name in modules])
    results = [check_module(by_name[name], module, effective, show_progress) for name, module in modules.items()]
    warnings = []
    if match is None or match.get("same_cpu"):  # the ruler's milliseconds compare on the same kind of machine only
        then = [v for name in modules for v in by_name[name]["samples"]["ruler_ms"]]
        now = [v for r in results for s in r["samples"] for v in s["ruler_ms"]]
        warnings = [w for w in (ruler_warning(then, now),) if w]
    measured = (health or Health()).merged(Health(tuple(warnings)))
    return {
        "ruler_warnings": warnings, "health": measured.to_dict(),
        "results": results, "exit_code": overall_exit(results), "settings": settings.__dict__,
        "latency_mode": effective.latency, "machine_match": match, "headline": headline(match, settings.latency),
        "env": environment(settings.threads),
    }  # fmt: skip
