"""Tables of the CI latency gate: a recorded baseline's entries and a check's decisions."""

from __future__ import annotations

from statistics import median

import pandas as pd

from compressbench.regress.baseline import entry_runtime
from compressbench.regress.measure import Samples
from compressbench.report.render import Section, plural


def baseline_section(baseline: dict) -> Section:
    rows = [
        {"entry": e["name"], "runtime": " ".join(entry_runtime(e)), "params": e["params"], "macs": e.get("macs"),
         "latency_vs_ruler": median(Samples.from_dict(e["samples"]).ratios)}
        for e in baseline["entries"]
    ]  # fmt: skip
    notes = ["latency_vs_ruler: median of the entry's latency divided by the reference workload's, timed interleaved"]
    return Section("Baseline entries", pd.DataFrame(rows), notes)


def check_section(result: dict, settings) -> Section:
    rows = []
    for r in result["results"]:
        lat, counts = r["latency"], r["counts"]
        rows.append(
            {
                "entry": r["name"],
                "runtime": " ".join(entry_runtime(r)),
                "decision": r["status"],
                "slowdown": f"{lat['slowdown']:+.1%}",
                "interval": f"[{lat['ci_low']:+.1%}, {lat['ci_high']:+.1%}]",
                "p_value": lat["p_value"],
                "remeasured": "yes" if lat["remeasured"] else "no",
                "counts": counts["status"],
                "why": f"{lat['reason']}; {counts['reason']}",
            }
        )
    notes = [
        f"latency relative to a reference workload timed interleaved in the same process; allowed slowdown {settings.max_slowdown:.0%}, "
        f"Mann-Whitney U alpha {settings.alpha}, {settings.confidence:.0%} bootstrap interval, {plural(settings.repeats, 'round')}, {plural(settings.threads, 'thread')}",
        f"exit code {result['exit_code']} (codes: 0 pass, 1 regression, 3 inconclusive)",
    ]
    if result.get("headline"):
        notes.insert(0, result["headline"])
    health = result.get("health")
    if health and health.get("warnings"):
        notes.insert(0, "measurement health: " + "; ".join(health["warnings"]))
    if result.get("latency_mode", settings.latency) == "advisory":
        why = "--latency advisory" if settings.latency == "advisory" else "the baseline is not this machine's at these threads"
        notes.append(f"latency advisory ({why}): the latency verdict is reported; params and MACs alone decide the exit code")
    return Section("Latency check against the baseline", pd.DataFrame(rows), notes)
