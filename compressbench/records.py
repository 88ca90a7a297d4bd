"""The records compressbench measures and writes: typed, built once, never changed afterwards, versioned.

Each record is a frozen dataclass built in one place: :class:`ComparisonRecord` (``compare()``; a
compress run and ``distill`` add their context), :class:`ResultsRecord` (``bench``),
:class:`SearchRecord` (``search``) and :class:`ProfileRecord` (``profile``); the baseline file of the
CI gate is :class:`compressbench.regress.records.BaselineRecord`. A step that adds to a record (hints,
the files a command saved, a training summary) returns a new record (``dataclasses.replace``).

``to_json()`` is what a file holds, with a ``format`` tag carrying a version; ``from_json()`` reads
the current version and the versions already on disk, checking the tag, that every section is there
and that each holds the right type, so a file that parses but is not what it claims to be is one
clear error before any work (and before any output is written). A record also reads like the JSON
it writes (``record["rows"][0]["akd_px"]`` is ``record.to_json()["rows"][0]["akd_px"]``, a fresh
copy), and has no ``record[key] = value``.

Keys are snake_case with units in the key (``latency_ms``, ``size_mb``, ``akd_px``). One latency
summary, :class:`LatencySummary` (median, p10, p90, IQR, runs), serves every record; its fields keep
the names each file has always used (``latency_p10`` in a comparison row, ``p10`` in a profile,
``p10_ms`` in an export manifest). One size: :func:`compressbench.profiling.counting.size_mb`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, input_file_problem, read_error

COMPARISON_FORMAT = "compressbench-comparison/2"  # 2: rows carry the whole latency summary (latency_iqr, latency_runs)
COMPARISON_FORMAT_V1 = "compressbench-comparison/1"  # still read
RESULTS_FORMAT = "compressbench-results/2"  # 2: its comparison is a compressbench-comparison/2
RESULTS_FORMAT_V1 = "compressbench-results/1"  # still read
SEARCH_FORMAT = "compressbench-search/1"  # before it, a search wrote a compressbench-comparison/1 with a "front"
PROFILE_FORMAT = "compressbench-profile/1"
SENSITIVITY_FORMAT = "compressbench-sensitivity/1"  # compressbench.compression.sensitivity.SensitivityRecord
COMPARISON_FORMATS = (COMPARISON_FORMAT, COMPARISON_FORMAT_V1)
RESULTS_FORMATS = (RESULTS_FORMAT, RESULTS_FORMAT_V1)

COMPRESS_WRITES = "a comparison written by 'compressbench compress'"
SEARCH_WRITES = "a search record written by 'compressbench search --results'"
# format tag -> what a file with that tag is, for the error when it is given where another is wanted
WRITTEN_BY = {
    COMPARISON_FORMAT: COMPRESS_WRITES,
    COMPARISON_FORMAT_V1: COMPRESS_WRITES,
    RESULTS_FORMAT: "a results file written by 'compressbench bench'",
    RESULTS_FORMAT_V1: "a results file written by 'compressbench bench'",
    SEARCH_FORMAT: SEARCH_WRITES,
    PROFILE_FORMAT: "a profile written by 'compressbench profile'",
    SENSITIVITY_FORMAT: "a sensitivity record written by 'compressbench sensitivity --output'",
}

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
OPTIONAL_INT = (int, type(None))
OPTIONAL_STR = (str, type(None))
OPTIONAL_DICT = (dict, type(None))
OPTIONAL_LIST = (list, type(None))


def _type_names(expected) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a table", list: "a list"}
    return " or ".join(names.get(k, "null") for k in kinds if k is not type(None)) + (" or null" if type(None) in kinds else "")


def _mistyped(value, expected) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)


def check_sections(doc: Any, schema: dict[str, Any], where: str) -> None:
    """Raise one :class:`CompressbenchError` naming the first missing or mistyped section of ``doc``."""
    if not isinstance(doc, dict):
        raise CompressbenchError(f"{where} must be a table, got {type(doc).__name__}")
    for key, expected in schema.items():
        if key not in doc:
            raise CompressbenchError(f"{where} misses its '{key}' section")
        if _mistyped(doc[key], expected):
            raise CompressbenchError(f"{where}: '{key}' must be {_type_names(expected)}, got {json.dumps(doc[key])[:40]}")


def check_optional(doc: dict, schema: dict[str, Any], where: str) -> None:
    """Like :func:`check_sections` for sections a record may leave out: each one present must hold its type."""
    for key, expected in schema.items():
        if key in doc and _mistyped(doc[key], expected):
            raise CompressbenchError(f"{where}: '{key}' must be {_type_names(expected)}, got {json.dumps(doc[key])[:40]}")


def check_items(values: list, expected, where: str) -> None:
    """Raise one :class:`CompressbenchError` naming the first entry of ``values`` that is not ``expected``."""
    for index, value in enumerate(values, start=1):
        if _mistyped(value, expected):
            raise CompressbenchError(f"{where} entry {index} must be {_type_names(expected)}, got {json.dumps(value)[:40]}")


def _check_format(data: Any, accepted: Sequence[str], what: str, where: str, untagged_ok: bool = True) -> None:
    found = data.get("format") if isinstance(data, dict) else None
    if (found is None and untagged_ok) or found in accepted:
        return
    raise CompressbenchError(f"{where} is not {what} (format {found!r}, expected {accepted[0]!r})")


def plain(value):
    """``value`` as JSON data, copied: records (anything with ``to_json``) as their JSON, tuples as lists."""
    if hasattr(value, "to_json") and callable(value.to_json):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _freeze(record, *names: str) -> None:
    """Store the sequence fields ``names`` of a frozen ``record`` as tuples (given as lists or tuples)."""
    for name in names:
        value = getattr(record, name)
        if isinstance(value, list):
            object.__setattr__(record, name, tuple(value))


class JsonView(Mapping):
    """A record read like the JSON it writes: ``record[key]`` is ``record.to_json()[key]`` (a fresh
    copy: changing it changes no record), so code written against the files reads records as well.
    There is no ``record[key] = value``: a record is never changed once built (build a new one with
    :func:`dataclasses.replace`)."""

    def to_json(self) -> dict:
        return {key: self._json_value(key) for key in self._json_keys()}

    def _json_keys(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _json_value(self, key: str):
        return plain(getattr(self, key))

    def __getitem__(self, key: str):
        if key not in self._json_keys():
            raise KeyError(key)
        return self._json_value(key)

    def __iter__(self):
        return iter(self._json_keys())

    def __len__(self) -> int:
        return len(self._json_keys())

    def __contains__(self, key) -> bool:
        return key in self._json_keys()


# -- latency ----------------------------------------------------------------------------------------

LATENCY_FIELDS = ("median", "p10", "p90", "iqr", "runs")
# the names of the five fields in each kind of file (what files on disk have always used)
LATENCY_SPELLINGS = {
    "profile": LATENCY_FIELDS,  # a profile's latency_ms, per-round statistics
    "row": ("latency_ms", "latency_p10", "latency_p90", "latency_iqr", "latency_runs"),  # a comparison row
    "manifest": ("median_ms", "p10_ms", "p90_ms", "iqr_ms", "runs"),  # an export manifest's latency
}


def quantile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default method) of ``samples``."""
    ordered = sorted(samples)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class LatencySummary:
    """Latency over ``runs`` timed calls (ms): median and spread (p10/p90, IQR). The one summary
    of every record: profiles, comparison rows, export manifests, baseline entries and the gate.
    ``iqr`` and ``runs`` are None only where a file written before they were kept is read."""

    median: float
    p10: float
    p90: float
    iqr: float | None = None
    runs: int | None = None

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float]) -> LatencySummary:
        samples = [float(s) for s in samples_ms]
        if not samples:
            raise ValueError("a latency summary needs at least one sample")
        return cls(
            median=statistics.median(samples), p10=quantile(samples, 0.10), p90=quantile(samples, 0.90),
            iqr=quantile(samples, 0.75) - quantile(samples, 0.25), runs=len(samples),
        )  # fmt: skip

    def to_json(self, spelling: str = "profile") -> dict:
        """The five fields under the names of ``spelling`` (a key of :data:`LATENCY_SPELLINGS`)."""
        return dict(zip(LATENCY_SPELLINGS[spelling], (self.median, self.p10, self.p90, self.iqr, self.runs)))

    @classmethod
    def from_json(cls, data: Mapping, spelling: str = "profile") -> LatencySummary | None:
        """The summary under the names of ``spelling`` in ``data``; None when it holds no median."""
        keys = LATENCY_SPELLINGS[spelling]
        if data.get(keys[0]) is None:
            return None
        return cls(*(data.get(key) for key in keys))

    @staticmethod
    def empty(spelling: str = "row") -> dict:
        """The five fields of ``spelling``, all None: where nothing was timed."""
        return dict.fromkeys(LATENCY_SPELLINGS[spelling])


LATENCY_SCHEMA = {"median": NUMBER, "p10": NUMBER, "p90": NUMBER, "iqr": NUMBER, "runs": int}


# -- comparison -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow(JsonView):
    """One row of a comparison: a model measured against the reference (the first row).
    ``recover_steps``, ``recovered_by`` and ``val_akd_px`` are a search's trial of the variant
    (written only in search records)."""

    variant: str
    method: str
    params: int | None
    macs: int | None
    macs_int8: bool
    size_mb: float | None
    peak_mem_mb: float | None
    latency: LatencySummary | None = None  # on the record's runtime; None where the row could not run there
    speedup: float | None = None
    akd_px: float | None = None
    jacobian_error: float | None = None
    precision: str | None = None  # what the runtime actually ran in (fp32, bf16, int8)
    speedup_vs_eager_fp32: float | None = None  # against the teacher in PyTorch eager fp32, same run
    notes: tuple[str, ...] = ()
    recover_steps: int | None = None
    recovered_by: str | None = None
    val_akd_px: float | None = None
    akd_px_ci95: float | None = None  # half-width of akd_px's 95% interval over the held-out frames

    def __post_init__(self):
        _freeze(self, "notes")

    @property
    def latency_ms(self) -> float | None:
        return self.latency.median if self.latency is not None else None

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None

    def with_notes(self, notes: Iterable[str]) -> ComparisonRow:
        return replace(self, notes=(*self.notes, *notes))

    def _json_keys(self) -> tuple[str, ...]:
        return ROW_KEYS + tuple(key for key in SEARCH_ROW_KEYS if getattr(self, key) is not None)

    def to_json(self) -> dict:
        latency = self.latency.to_json("row") if self.latency is not None else LatencySummary.empty("row")
        out = {}
        for key in self._json_keys():
            out[key] = latency[key] if key in latency else self.note if key == "note" else plain(getattr(self, key))
        return out

    def _json_value(self, key: str):
        return self.to_json()[key]

    @classmethod
    def from_json(cls, data: Any, where: str = "row") -> ComparisonRow:
        check_sections(data, ROW_SCHEMA, where)
        check_optional(data, ROW_OPTIONAL, where)
        if data["latency_ms"] is not None:
            check_sections(data, {"latency_p10": NUMBER, "latency_p90": NUMBER}, where)
        note = data.get("note")
        return cls(
            variant=data["variant"], method=data["method"], params=data["params"], macs=data["macs"],
            macs_int8=data["macs_int8"], size_mb=data["size_mb"], peak_mem_mb=data.get("peak_mem_mb"),
            latency=LatencySummary.from_json(data, "row"), speedup=data["speedup"], akd_px=data["akd_px"],
            akd_px_ci95=data.get("akd_px_ci95"), jacobian_error=data["jacobian_error"], precision=data.get("precision"),
            speedup_vs_eager_fp32=data.get("speedup_vs_eager_fp32"), notes=(note,) if note else (),
            recover_steps=data.get("recover_steps"), recovered_by=data.get("recovered_by"), val_akd_px=data.get("val_akd_px"),
        )  # fmt: skip


ROW_KEYS = (
    "variant", "method", "params", "macs", "macs_int8", "size_mb", "peak_mem_mb", *LATENCY_SPELLINGS["row"], "speedup",
    "akd_px", "akd_px_ci95", "jacobian_error", "precision", "speedup_vs_eager_fp32", "note",
)  # fmt: skip
SEARCH_ROW_KEYS = ("recover_steps", "recovered_by", "val_akd_px")

# section -> the type(s) it must hold; a record may carry more sections than these
ROW_SCHEMA = {
    "variant": str, "method": str, "params": (int, type(None)), "macs": (int, type(None)), "macs_int8": bool,
    "size_mb": OPTIONAL_NUMBER, "latency_ms": OPTIONAL_NUMBER, "speedup": OPTIONAL_NUMBER, "akd_px": OPTIONAL_NUMBER,
    "jacobian_error": OPTIONAL_NUMBER,
}  # fmt: skip
ROW_OPTIONAL = {
    "peak_mem_mb": OPTIONAL_NUMBER, "latency_p10": OPTIONAL_NUMBER, "latency_p90": OPTIONAL_NUMBER,
    "latency_iqr": OPTIONAL_NUMBER, "latency_runs": OPTIONAL_INT, "precision": OPTIONAL_STR,
    "speedup_vs_eager_fp32": OPTIONAL_NUMBER, "note": OPTIONAL_STR, "akd_px_ci95": OPTIONAL_NUMBER, "recover_steps": OPTIONAL_INT,
    "recovered_by": OPTIONAL_STR, "val_akd_px": OPTIONAL_NUMBER,
}  # fmt: skip
COMPARISON_SCHEMA = {"rows": list, "modules": list, "env": dict}
COMPARISON_OPTIONAL = {
    "runs": dict, "notes": list, "health": OPTIONAL_DICT, "model": str, "reference": str, "chain": list, "stages": list,
    "prior_stages": list, "data": str, "seed": int, "training": dict, "onnx": str, "pte": str, "out": str,
}  # fmt: skip
# the sections compare() measures; the rest are a compress run's context and the files it saved
COMPARISON_CORE = ("rows", "modules", "runs", "env", "notes", "health")
COMPARISON_CONTEXT = ("model", "reference", "chain", "stages", "prior_stages", "data", "seed")
COMPARISON_SAVED = ("training", "onnx", "pte", "out")


@dataclass(frozen=True)
class ComparisonRecord(JsonView):
    """What :func:`compressbench.comparison.compare` measured: the rows (the reference first), the
    per-module side-by-side table, each row's run record, the environment, notes and the machine's
    health. A compress run adds where it started and what it applied (``model``, ``reference``,
    ``chain``, ``stages``, ``prior_stages``, ``data``, ``seed``); ``distill`` its ``training``
    summary; ``onnx``, ``pte`` and ``out`` name the files a command saved. None: not part of it."""

    rows: tuple[ComparisonRow, ...]
    modules: tuple[dict, ...]
    env: dict
    runs: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    health: dict | None = None
    model: str | None = None
    reference: str | None = None
    chain: tuple[str, ...] | None = None
    stages: tuple[dict, ...] | None = None  # {"method", "options", "report"} of each stage applied
    prior_stages: tuple[dict, ...] | None = None  # {"method", "options"} of the stages the model came with
    data: str | None = None
    seed: int | None = None
    training: dict | None = None
    onnx: str | None = None
    pte: str | None = None
    out: str | None = None

    def __post_init__(self):
        _freeze(self, "rows", "modules", "notes", "chain", "stages", "prior_stages")
        if not self.rows:
            raise ValueError("a comparison needs at least its reference row")

    def row(self, variant: str) -> ComparisonRow:
        return next(r for r in self.rows if r.variant == variant)

    def with_row_notes(self, added: Mapping[str, Sequence[str]]) -> ComparisonRecord:
        """A new record whose rows named in ``added`` end with those notes, each also in ``notes``
        (as ``variant: note``)."""
        rows = tuple(row.with_notes(added.get(row.variant, ())) for row in self.rows)
        extra = tuple(f"{row.variant}: {note}" for row in self.rows for note in added.get(row.variant, ()))
        return replace(self, rows=rows, notes=(*self.notes, *extra)) if extra else self

    def sections(self) -> dict:
        """The measured sections as JSON (what a search record holds of its comparison)."""
        return {key: self._json_value(key) for key in COMPARISON_CORE}

    def _json_keys(self) -> tuple[str, ...]:
        optional = tuple(k for k in COMPARISON_CONTEXT if getattr(self, k) is not None)
        saved = tuple(k for k in COMPARISON_SAVED if getattr(self, k) is not None)
        return ("format", *optional, *COMPARISON_CORE, *saved)

    def _json_value(self, key: str):
        return COMPARISON_FORMAT if key == "format" else plain(getattr(self, key))

    @classmethod
    def from_json(cls, data: Any, where: str = "comparison") -> ComparisonRecord:
        """Check ``data`` (version 2 or 1, or untagged: a comparison inside results) section by
        section and build the record; sections beyond these are ignored."""
        _check_format(data, COMPARISON_FORMATS, "a compressbench comparison", where)
        check_sections(data, COMPARISON_SCHEMA, where)
        check_optional(data, COMPARISON_OPTIONAL, where)
        if not data["rows"]:
            raise CompressbenchError(f"{where}: 'rows' is empty; the first row is the reference every other is compared with")
        rows = tuple(ComparisonRow.from_json(row, f"{where}, row {i}") for i, row in enumerate(data["rows"], start=1))
        check_items(data["modules"], dict, f"{where}: 'modules'")
        check_items(data.get("notes", []), str, f"{where}: 'notes'")
        sequences = {key: tuple(data[key]) for key in ("chain", "stages", "prior_stages") if key in data}
        for key in ("stages", "prior_stages"):
            check_items(data.get(key, []), dict, f"{where}: '{key}'")
        return cls(
            rows=rows, modules=tuple(data["modules"]), env=data["env"], runs=data.get("runs", {}),
            notes=tuple(data.get("notes", [])), health=data.get("health"),
            **{key: data.get(key) for key in ("model", "reference", "data", "seed", "training", "onnx", "pte", "out")},
            **sequences,
        )  # fmt: skip


def check_comparison(record: Any, where: str) -> ComparisonRecord:
    """A comparison (``compare()``'s output, also inside bench results; a record or its JSON) checked
    as reading it back checks it, and built."""
    return ComparisonRecord.from_json(record.to_json() if isinstance(record, JsonView) else record, where)


# -- bench results ----------------------------------------------------------------------------------

RESULTS_SCHEMA = {
    "format": str, "suite": str, "measure": dict, "stages": dict, "comparison": dict, "profiles": dict,
    "overlays": dict, "env": dict,
}  # fmt: skip
RESULTS_OPTIONAL = {"specs": list, "skipped": dict, "cached": list}
RESULTS_KEYS = ("format", "suite", "measure", "specs", "skipped", "stages", "comparison", "profiles", "overlays", "env", "cached")


@dataclass(frozen=True)
class ResultsRecord(JsonView):
    """What ``bench`` measured: every variant of a suite in one comparison (the first the reference),
    how each was built (``specs``, ``stages``), which were skipped or came from the cache, each
    variant's per-module/per-layer profile (``profiles``) and keypoints for overlays."""

    suite: str
    measure: dict
    comparison: ComparisonRecord
    specs: tuple[dict, ...] = ()
    skipped: dict = field(default_factory=dict)  # optional variant -> why this machine could not run it
    stages: dict = field(default_factory=dict)  # variant -> [{"method", "options", "report"}]
    profiles: dict = field(default_factory=dict)  # variant -> the profile sections a report draws
    overlays: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    cached: tuple[str, ...] = ()  # variants loaded from the cache rather than built

    def __post_init__(self):
        _freeze(self, "specs", "cached")

    def _json_keys(self) -> tuple[str, ...]:
        return RESULTS_KEYS

    def _json_value(self, key: str):
        return RESULTS_FORMAT if key == "format" else plain(getattr(self, key))

    @classmethod
    def from_json(cls, data: Any, where: str = "results") -> ResultsRecord:
        _check_format(data, RESULTS_FORMATS, "a compressbench results file", where, untagged_ok=False)
        check_sections(data, RESULTS_SCHEMA, where)
        check_optional(data, RESULTS_OPTIONAL, where)
        return cls(
            suite=data["suite"], measure=data["measure"], comparison=ComparisonRecord.from_json(data["comparison"], f"{where}: comparison"),
            specs=tuple(data.get("specs", [])), skipped=data.get("skipped", {}), stages=data["stages"], profiles=data["profiles"],
            overlays=data["overlays"], env=data["env"], cached=tuple(data.get("cached", [])),
        )  # fmt: skip


# -- search -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSplit:
    """Where a search's seconds went: screening candidates, training them, the precision pass
    (mixed precision for candidates int8 pushed out of the bound), timing them."""

    screening_s: float = 0.0
    training_s: float = 0.0
    timing_s: float = 0.0
    precision_s: float = 0.0

    def to_json(self) -> dict:
        return {"screening_s": self.screening_s, "training_s": self.training_s, "precision_s": self.precision_s,
                "timing_s": self.timing_s}

    @classmethod
    def from_json(cls, data: Any, where: str = "budget_split") -> BudgetSplit:
        schema = {key: NUMBER for key in ("screening_s", "training_s", "precision_s", "timing_s")}
        if not isinstance(data, dict):
            raise CompressbenchError(f"{where} must be a table, got {json.dumps(data)[:40]}")
        check_optional(data, schema, where)
        return cls(**{key: float(data[key]) for key in schema if key in data})


SEARCH_SCHEMA = {
    "max_akd": NUMBER, "budget_s": NUMBER, "spent_s": NUMBER, "interrupted": bool, "trained": list, "log": list,
    "front": list, "front_chains": dict, "winner": OPTIONAL_STR,
}  # fmt: skip
SEARCH_OPTIONAL = {
    "runtime": str, "precision": str, "seed": int, "data": str, "budget_split": dict, "runtime_fronts": dict,
    "block_times": OPTIONAL_DICT, "plans": dict, "out": str, "schedule": OPTIONAL_DICT,
}  # fmt: skip
SEARCH_KEYS = (
    "format", "max_akd", "runtime", "precision", "budget_s", "spent_s", "interrupted", "seed", "data", "trained", "log",
    "front", "front_chains", "winner", "budget_split", "runtime_fronts", "block_times", "plans", "schedule",
)  # fmt: skip


def is_search(doc: Any) -> bool:
    """A search record: tagged as one, or a comparison of format 1 with a Pareto ``front`` (how
    searches were written before they had a tag of their own)."""
    if not isinstance(doc, Mapping):
        return False
    return doc.get("format") == SEARCH_FORMAT or (doc.get("format") == COMPARISON_FORMAT_V1 and "front" in doc)


@dataclass(frozen=True)
class SearchRecord(JsonView):
    """What ``search`` found: its bound, runtime, budget and what it spent (``budget_split``: where),
    which candidates it trained and how (``trained``, ``log``), the comparison it measured the
    survivors in (each row with its trial's ``recover_steps`` and ``val_akd_px``), the Pareto front
    (latency against AKD) with the chains that rebuild it, and the fastest variant within the bound
    (``winner``, None when none is). ``runtime_fronts`` holds the front measured on other runtimes
    (``"runtime precision"`` -> its front, winner and rows); ``block_times`` the teacher's per-block
    times latency-aware prune plans came from, ``plans`` their per-block ratios; ``schedule`` the
    recovery schedule (first-round steps, set by the budget or by ``--min-steps``); ``out`` names the
    saved winner. The JSON holds the comparison's sections at its top level, beside the search's own."""

    max_akd: float
    runtime: str
    precision: str
    budget_s: float
    spent_s: float
    interrupted: bool
    seed: int
    data: str
    trained: tuple[str, ...]
    log: tuple[dict, ...]
    front: tuple[str, ...]
    front_chains: dict
    winner: str | None
    comparison: ComparisonRecord
    budget_split: BudgetSplit = BudgetSplit()
    runtime_fronts: dict = field(default_factory=dict)  # "openvino int8" -> {"front", "winner", "rows"}
    block_times: dict | None = None
    plans: dict = field(default_factory=dict)  # "prune-lat-R" -> {block: ratio}
    schedule: dict | None = None  # the recovery schedule: first-round steps and how they were chosen (search_schedule.Schedule)
    out: str | None = None

    def __post_init__(self):
        _freeze(self, "trained", "log", "front")

    @property
    def rows(self) -> tuple[ComparisonRow, ...]:
        return self.comparison.rows

    def _json_keys(self) -> tuple[str, ...]:
        return (*SEARCH_KEYS, *COMPARISON_CORE, *(("out",) if self.out is not None else ()))

    def _json_value(self, key: str):
        if key == "format":
            return SEARCH_FORMAT
        if key in COMPARISON_CORE:
            return self.comparison._json_value(key)
        return plain(getattr(self, key))

    @classmethod
    def from_json(cls, data: Any, where: str = "search record") -> SearchRecord:
        """Check ``data`` (a ``compressbench-search/1`` record, or a search written before it as a
        ``compressbench-comparison/1`` with a ``front``) and build the record."""
        if not is_search(data):
            found = data.get("format") if isinstance(data, dict) else None
            raise CompressbenchError(f"{where} is not a compressbench search record (format {found!r}, expected {SEARCH_FORMAT!r})")
        check_sections(data, SEARCH_SCHEMA, where)
        check_optional(data, SEARCH_OPTIONAL, where)
        check_items(data["front"], str, f"{where}: 'front'")
        check_items(data["trained"], str, f"{where}: 'trained'")
        check_items(data["log"], dict, f"{where}: 'log'")
        comparison = ComparisonRecord.from_json({k: data[k] for k in (*COMPARISON_SCHEMA, *COMPARISON_CORE) if k in data}, where)
        return cls(
            max_akd=data["max_akd"], runtime=data.get("runtime", "torch"), precision=data.get("precision", "fp32"),
            budget_s=data["budget_s"], spent_s=data["spent_s"], interrupted=data["interrupted"], seed=data.get("seed", 0),
            data=data.get("data", "synthetic"), trained=tuple(data["trained"]), log=tuple(data["log"]),
            front=tuple(data["front"]), front_chains=data["front_chains"], winner=data["winner"], comparison=comparison,
            budget_split=BudgetSplit.from_json(data.get("budget_split", {}), f"{where}: budget_split"),
            runtime_fronts=data.get("runtime_fronts", {}), block_times=data.get("block_times"), plans=data.get("plans", {}),
            schedule=data.get("schedule"), out=data.get("out"),
        )  # fmt: skip


# -- reading files ----------------------------------------------------------------------------------


def _kind(doc: Any) -> str | None:
    """What a parsed file is, by its tag (comparisons written before they carried one by their sections)."""
    if is_search(doc):
        return SEARCH_WRITES
    if not isinstance(doc, dict):
        return None
    return WRITTEN_BY.get(doc.get("format")) or (COMPRESS_WRITES if {"rows", "chain"} <= set(doc) else None)


def read_json_record(
    path: str | Path, fmt: str | Sequence[str], what: str, wanted: str, untagged_ok: bool = False
) -> dict:
    """Read a JSON record file and check its format tag (``fmt``: the tag, or the tags read, the
    current first); every problem is one clear error that ends with ``wanted`` (which file to give
    instead). ``untagged_ok`` lets a file written before its record had a tag through; the caller's
    section checks then decide."""
    accepted = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    path = check_input_file(path, what, wanted)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise read_error(path, exc, what) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"{what} {path} is not valid JSON ({exc}); {wanted}") from None
    found = doc.get("format") if isinstance(doc, dict) else None
    if found in accepted:
        return doc
    known = _kind(doc)
    if known:
        raise CompressbenchError(f"{path} is {known}, not a {what}; {wanted}")
    if found is None and untagged_ok and isinstance(doc, dict):
        return doc
    raise CompressbenchError(f"{path} is not a {what} (format {found!r}, expected {accepted[0]!r}); {wanted}")


RESULTS_WANTED = (
    "give the results JSON written by 'compressbench bench' (e.g. compressbench bench benchmarks/suite.toml "
    "-o results.json), or for 'compressbench report' a comparison JSON of 'compress' or 'search --results'"
)


def read_results(path: str | Path) -> ResultsRecord:
    """A results file written by ``compressbench bench`` (either version), checked section by section."""
    doc = read_json_record(path, RESULTS_FORMATS, "compressbench results file", RESULTS_WANTED)
    return ResultsRecord.from_json(doc, f"results file {path}")


def read_comparison(path: str | Path) -> ComparisonRecord:
    """A comparison JSON written by ``compress`` (or ``distill``), checked section by section."""
    wanted = "give the JSON written by 'compressbench compress --format json -o FILE'"
    doc = read_json_record(path, COMPARISON_FORMATS, "compressbench comparison file", wanted)
    return ComparisonRecord.from_json(doc, f"comparison {path}")


def read_search(path: str | Path) -> SearchRecord:
    """A search record written by ``compressbench search --results`` (or, before search records had
    their own tag, a comparison with a front), checked section by section."""
    wanted = "give the JSON written by 'compressbench search --results FILE'"
    path = check_input_file(path, "compressbench search record", wanted)
    doc = _parsed(path)
    if not is_search(doc):
        read_json_record(path, SEARCH_FORMAT, "compressbench search record", wanted)  # names what it is instead
    return SearchRecord.from_json(doc, f"search record {path}")


def read_report_input(path: str | Path) -> ResultsRecord:
    """What ``report`` renders, as results: a results file of ``bench``, or a comparison record of
    ``compress`` or ``search`` (``--results``), given the results file's sections (no suite,
    profiles or overlays: the report leaves those parts out)."""
    doc = _parsed(path)
    found = doc.get("format") if isinstance(doc, dict) else None
    if is_search(doc):
        comparison, source = SearchRecord.from_json(doc, f"search record {path}").comparison, "search"
    elif found in COMPARISON_FORMATS:
        comparison, source = ComparisonRecord.from_json(doc, f"comparison {path}"), "compress"
    else:
        return read_results(path)
    return ResultsRecord(suite=f"{path} ({source} record)", measure={}, comparison=comparison, env=comparison.env)


def _parsed(path: str | Path):
    if input_file_problem(path) is not None:
        return None  # read_json_record names the problem (a FIFO is never opened: that would wait for a writer)
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # read_json_record names the problem


# -- profile ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRecord(JsonView):
    """What ``profile()`` measured: totals, the blog's per-module / per-block / per-layer tables, and
    the context that makes it comparable later. The tables stay lists of JSON rows (their columns
    differ by runtime and with machine peaks); :func:`compressbench.report.profile_tables` renders them."""

    model: str
    params: int
    macs_fvcore: int | None
    macs_thop: int | None
    macs_notes: list[str]  # why fvcore and thop disagree, or why one of them could not count
    size_mb: float
    latency_ms: LatencySummary
    batch: int
    input_size: int
    input_shape: list[int]
    threads: int
    warmup: int
    seed: int
    modules: list[dict]
    blocks: list[dict]
    layers: list[dict]
    tree: list[dict]
    attribution: dict
    hourglass_layout: bool
    efficiency: dict
    health: dict
    runtime: dict
    env: dict

    def _json_keys(self) -> tuple[str, ...]:
        return ("format", *(f.name for f in fields(self)))

    def _json_value(self, key: str):
        return PROFILE_FORMAT if key == "format" else plain(getattr(self, key))

    @classmethod
    def from_json(cls, data: Any, where: str = "profile record") -> ProfileRecord:
        """Check ``data`` section by section (one error naming ``where`` and the key at fault) and
        build the record. A record without a format tag (written before profiles had one) is read if
        its sections are right; a different tag is refused. Sections beyond these are ignored."""
        _check_format(data, (PROFILE_FORMAT,), "a compressbench profile", where)
        check_sections(data, PROFILE_SCHEMA, where)
        for key, kinds in PROFILE_ITEMS.items():
            check_items(data[key], kinds, f"{where}: '{key}'")
        check_sections(data["latency_ms"], LATENCY_SCHEMA, f"{where}: latency_ms")
        sections = {key: data[key] for key in PROFILE_SCHEMA}
        sections["latency_ms"] = LatencySummary.from_json(data["latency_ms"])
        return cls(**sections)


PROFILE_SCHEMA = {
    "model": str, "params": int, "macs_fvcore": (int, type(None)), "macs_thop": (int, type(None)), "macs_notes": list,
    "size_mb": NUMBER, "latency_ms": dict, "batch": int, "input_size": int, "input_shape": list, "threads": int,
    "warmup": int, "seed": int, "modules": list, "blocks": list, "layers": list, "tree": list, "attribution": dict,
    "hourglass_layout": bool, "efficiency": dict, "health": dict, "runtime": dict, "env": dict,
}  # fmt: skip
# list section -> the type each of its entries must hold
PROFILE_ITEMS = {"macs_notes": str, "input_shape": int, "modules": dict, "blocks": dict, "layers": dict, "tree": dict}


def read_profile(path: str | Path) -> ProfileRecord:
    """A profile JSON written by ``compressbench profile --format json``, checked section by section."""
    wanted = "give the JSON written by 'compressbench profile' (e.g. compressbench profile --format json -o profile.json)"
    doc = read_json_record(path, PROFILE_FORMAT, "compressbench profile file", wanted, untagged_ok=True)
    return ProfileRecord.from_json(doc, f"profile file {path}")
