"""The baseline file of the CI gate as typed records, checked when read.

A file (:class:`BaselineRecord`, format ``compressbench-baseline/2``) holds one
:class:`MachineBaseline` per machine fingerprint; each holds one :class:`BaselineEntry` per model:
its architecture fingerprint, exact counts, the runtime it was timed on and its raw ruler-relative
samples. Version 1 (one baseline, no fingerprint) is still read, as a file of one baseline.
Records are frozen: adding a machine's baseline or choosing the one to check against builds new ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressbench.errors import CompressbenchError
from compressbench.records import JsonView, LatencySummary, plain
from compressbench.regress.measure import Samples

FORMAT = "compressbench-baseline/2"  # {"format", "baselines": [one per machine fingerprint]}
FORMAT_V1 = "compressbench-baseline/1"  # one baseline, no fingerprint; still read

ENTRY_KEYS = ("name", "fingerprint", "params", "samples")
SPEC_KEYS = ("name", "model", "checkpoint", "config", "method", "options", "set", "optional")
MACHINE_SECTIONS = ("ruler", "suite", "settings", "measure", "machine", "env")


@dataclass(frozen=True)
class BaselineEntry(JsonView):
    """One model of a baseline: what it is (``fingerprint``, ``params``, ``macs``, the suite
    ``spec`` that rebuilds it), what it was timed on (``runtime``, the run record; None: recorded
    before runtimes were, eager fp32) and its raw ``samples`` (model and ruler ms, round by round)."""

    name: str
    fingerprint: str
    params: int | None
    samples: Samples
    spec: dict | None = None
    macs: int | None = None
    runtime: dict | None = None

    @property
    def latency(self) -> LatencySummary:
        """The model's latency when the baseline was recorded (ms; comparable on its machine only)."""
        return self.samples.latency()

    def _json_keys(self) -> tuple[str, ...]:
        return (
            "name", *(("spec",) if self.spec is not None else ()), "fingerprint", "params", "macs",
            *(("runtime",) if self.runtime is not None else ()), "samples",
        )  # fmt: skip

    def _json_value(self, key: str):
        return self.samples.to_dict() if key == "samples" else plain(getattr(self, key))

    @classmethod
    def from_json(cls, data: Any, index: int = 1) -> BaselineEntry:
        """An entry as :func:`compressbench.regress.baseline.baseline_entry` writes it; a wrong one
        raises the problem (see :func:`entry_problem`), to be said with the file's name."""
        problem = entry_problem(data, index)
        if problem:
            raise CompressbenchError(problem)
        return cls(
            name=data["name"], fingerprint=data["fingerprint"], params=data["params"], samples=Samples.from_dict(data["samples"]),
            spec=data.get("spec"), macs=data.get("macs"), runtime=data.get("runtime"),
        )  # fmt: skip


@dataclass(frozen=True)
class MachineBaseline(JsonView):
    """One machine's baseline: its entries, the ``ruler`` their ratios are to, the ``suite`` and
    ``measure`` they were built with, the check ``settings``, the ``machine`` fingerprint (None: a
    version-1 baseline), the environment and the machine's ``health`` when recorded. ``match``
    (how the machine checking it compares, :class:`~compressbench.profiling.machine.MachineMatch`
    as a dict) is set on the baseline :func:`~compressbench.regress.baseline.select_baseline` chose."""

    entries: tuple[BaselineEntry, ...]
    ruler: str | None = None
    suite: str | None = None
    settings: dict | None = None
    measure: dict | None = None
    machine: dict | None = None
    env: dict | None = None
    health: dict | None = None
    match: dict | None = None

    def __post_init__(self):
        object.__setattr__(self, "entries", tuple(self.entries))

    def _json_keys(self) -> tuple[str, ...]:
        present = tuple(key for key in MACHINE_SECTIONS if getattr(self, key) is not None)
        return (*present, "entries", *(k for k in ("health", "match") if getattr(self, k) is not None))

    @classmethod
    def from_json(cls, data: Any) -> MachineBaseline:
        """One machine's baseline; a wrong one raises the problem (see :func:`baseline_problem`)."""
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise CompressbenchError("a baseline without entries")
        problem = baseline_problem(data)
        if problem:
            raise CompressbenchError(problem)
        entries = tuple(BaselineEntry.from_json(entry, index) for index, entry in enumerate(data["entries"], start=1))
        return cls(entries=entries, **{key: data.get(key) for key in (*MACHINE_SECTIONS, "health", "match")})


@dataclass(frozen=True)
class BaselineRecord(JsonView):
    """A baseline file: one baseline per machine fingerprint. ``legacy``: read from a version-1 file
    (one baseline without a fingerprint; written back as version 2)."""

    baselines: tuple[MachineBaseline, ...]
    legacy: bool = False

    def __post_init__(self):
        object.__setattr__(self, "baselines", tuple(self.baselines))

    def _json_keys(self) -> tuple[str, ...]:
        return ("format", "baselines")

    def _json_value(self, key: str):
        return FORMAT if key == "format" else plain(self.baselines)

    @classmethod
    def from_json(cls, doc: Any, path: str | Path = "baseline") -> BaselineRecord:
        """Check a parsed baseline file (version 2 or 1); every problem is one error naming ``path``."""
        if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_V1):
            raise CompressbenchError(f"{path} is not a compressbench baseline (format {FORMAT!r})")
        if isinstance(doc.get("baselines"), list):
            baselines = doc["baselines"]
        elif isinstance(doc.get("entries"), list):
            baselines = [{k: v for k, v in doc.items() if k != "format"}]
        else:
            raise CompressbenchError(f"{path} is not a compressbench baseline (format {FORMAT!r})")
        read = []
        for one in baselines:
            if not isinstance(one, dict) or not isinstance(one.get("entries"), list):
                raise CompressbenchError(f"{path} is not a compressbench baseline (a baseline without entries)")
            try:
                read.append(MachineBaseline.from_json(one))
            except CompressbenchError as exc:
                raise CompressbenchError(
                    f"baseline file {path}: {exc}; it was not written by 'compressbench baseline' (or was edited): record it again"
                ) from None
        return cls(tuple(read), legacy=doc.get("format") == FORMAT_V1)


def as_baseline(one: Any) -> MachineBaseline:
    """``one`` (a :class:`MachineBaseline`, or one as JSON) as a record."""
    return one if isinstance(one, MachineBaseline) else MachineBaseline.from_json(plain(one))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def entry_problem(entry: object, index: int) -> str | None:
    """What is wrong with one baseline entry (the shape :func:`baseline_entry` writes), or None."""
    if not isinstance(entry, dict):
        return f"entry #{index} must be a table, got {json.dumps(entry)[:40]}"
    missing = [key for key in ENTRY_KEYS if key not in entry]
    label = repr(entry["name"]) if isinstance(entry.get("name"), str) else f"#{index}"
    if missing:
        return f"entry {label} is incomplete (no {', '.join(missing)})"
    if not isinstance(entry["name"], str) or not entry["name"]:
        return f"entry #{index}: 'name' must be a non-empty string"
    if not isinstance(entry["fingerprint"], str):
        return f"entry {label}: 'fingerprint' must be a string"
    for key in ("params", "macs"):
        if entry.get(key) is not None and not _is_int(entry[key]):
            return f"entry {label}: '{key}' must be an integer, got {json.dumps(entry[key])[:40]}"
    samples = entry["samples"]
    if not isinstance(samples, dict) or not _numbers(samples.get("model_ms")) or not _numbers(samples.get("ruler_ms")):
        return f"entry {label}: 'samples' must be a table of 'model_ms' and 'ruler_ms' lists of numbers"
    if len(samples["model_ms"]) != len(samples["ruler_ms"]) or not samples["model_ms"]:
        return f"entry {label}: 'samples' must hold as many 'model_ms' as 'ruler_ms' times, at least one"
    spec = entry.get("spec")
    if spec is not None and not isinstance(spec, dict):
        return f"entry {label}: 'spec' must be a table, got {json.dumps(spec)[:40]}"
    if spec:  # an empty spec is no spec: the entry is checked only against a --model
        if not isinstance(spec.get("name"), str):
            return f"entry {label}: 'spec' must name its variant"
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            return f"entry {label}: 'spec' has unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(SPEC_KEYS)}"
    runtime = entry.get("runtime")
    named = isinstance(runtime, dict) and all(isinstance(runtime.get(k), str) for k in ("runtime", "precision_requested"))
    if runtime and not named:
        return f"entry {label}: 'runtime' must be a table with 'runtime' and 'precision_requested' names"
    return None


def baseline_problem(one: dict) -> str | None:
    """What is wrong with one machine's baseline (its sections and entries), or None."""
    for key in ("settings", "env", "measure"):
        if one.get(key) is not None and not isinstance(one[key], dict):
            return f"'{key}' must be a table, got {json.dumps(one[key])[:40]}"
    threads = (one.get("settings") or {}).get("threads")
    if threads is not None and not _is_int(threads):
        return f"settings.threads must be an integer, got {json.dumps(threads)[:40]}"
    machine = one.get("machine")
    fingerprint = isinstance(machine, dict) and isinstance(machine.get("cpu_model"), str) and _is_int(machine.get("cores"))
    if machine and not fingerprint:
        return "'machine' must be a machine fingerprint table (with cpu_model and cores)"
    for key in ("ruler", "suite"):
        if one.get(key) is not None and not isinstance(one[key], str):
            return f"'{key}' must be a string, got {json.dumps(one[key])[:40]}"
    for index, entry in enumerate(one["entries"], start=1):
        problem = entry_problem(entry, index)
        if problem:
            return problem
    return None
