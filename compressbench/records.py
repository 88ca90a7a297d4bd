"""The records compressbench measures and writes: their shapes, format tags, and the checks that read
them back.

A record is JSON with snake_case keys and units in the key (``latency_ms``, ``size_mb``,
``akd_px``). Records written to files carry a ``format`` tag with a version; reading one checks the
tag, that every section is there, and that each holds the right type, so a file that parses but is
not what it claims to be is one clear error before any work (and before any output is written).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compressbench.errors import CompressbenchError
from compressbench.files import check_input_file, input_file_problem, read_error

COMPARISON_FORMAT = "compressbench-comparison/1"
RESULTS_FORMAT = "compressbench-results/1"
PROFILE_FORMAT = "compressbench-profile/1"

# format tag -> what a file with that tag is, for the error when it is given where another is wanted
WRITTEN_BY = {
    COMPARISON_FORMAT: "a comparison written by 'compressbench compress'",
    RESULTS_FORMAT: "a results file written by 'compressbench bench'",
    PROFILE_FORMAT: "a profile written by 'compressbench profile'",
}

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))


@dataclass
class ComparisonRow:
    """One row of a comparison: a model measured against the reference (the first row)."""

    variant: str
    method: str
    params: int
    macs: int | None
    macs_int8: bool
    size_mb: float
    peak_mem_mb: float | None
    latency_ms: float | None = None
    latency_p10: float | None = None
    latency_p90: float | None = None
    speedup: float | None = None
    akd_px: float | None = None
    jacobian_error: float | None = None
    precision: str | None = None  # what the runtime actually ran in (fp32, bf16, int8)
    speedup_vs_eager_fp32: float | None = None  # against the teacher in PyTorch eager fp32, same run
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        out["note"] = "; ".join(out.pop("notes")) or None
        return out


ROW_KEYS = tuple(k for k in ComparisonRow.__dataclass_fields__ if k != "notes") + ("note",)

# section -> the type(s) it must hold; a record may carry more sections than these
ROW_SCHEMA = {
    "variant": str, "method": str, "params": (int, type(None)), "macs": (int, type(None)), "macs_int8": bool,
    "size_mb": OPTIONAL_NUMBER, "latency_ms": OPTIONAL_NUMBER, "speedup": OPTIONAL_NUMBER, "akd_px": OPTIONAL_NUMBER,
    "jacobian_error": OPTIONAL_NUMBER,
}  # fmt: skip
COMPARISON_SCHEMA = {"rows": list, "modules": list, "env": dict}
RESULTS_SCHEMA = {
    "format": str, "suite": str, "measure": dict, "stages": dict, "comparison": dict, "profiles": dict,
    "overlays": dict, "env": dict,
}  # fmt: skip


def _type_names(expected) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a table", list: "a list"}
    return " or ".join(names.get(k, "null") for k in kinds if k is not type(None)) + (" or null" if type(None) in kinds else "")


def check_sections(doc: Any, schema: dict[str, Any], where: str) -> None:
    """Raise one :class:`CompressbenchError` naming the first missing or mistyped section of ``doc``."""
    if not isinstance(doc, dict):
        raise CompressbenchError(f"{where} must be a table, got {type(doc).__name__}")
    for key, expected in schema.items():
        if key not in doc:
            raise CompressbenchError(f"{where} misses its '{key}' section")
        value = doc[key]
        kinds = expected if isinstance(expected, tuple) else (expected,)
        mistyped = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if mistyped:
            raise CompressbenchError(f"{where}: '{key}' must be {_type_names(expected)}, got {json.dumps(value)[:40]}")


def check_comparison(record: Any, where: str) -> None:
    """A comparison record (``compare()``'s output, also inside bench results)."""
    check_sections(record, COMPARISON_SCHEMA, where)
    if not record["rows"]:
        raise CompressbenchError(f"{where}: 'rows' is empty; the first row is the reference every other is compared with")
    for index, row in enumerate(record["rows"], start=1):
        check_sections(row, ROW_SCHEMA, f"{where}, row {index}")


def read_json_record(path: str | Path, fmt: str, what: str, wanted: str, untagged_ok: bool = False) -> dict:
    """Read a JSON record file and check its format tag; every problem is one clear error that ends
    with ``wanted`` (which file to give instead). ``untagged_ok`` lets a file written before its
    record had a tag through; the caller's section checks then decide."""
    path = check_input_file(path, what, wanted)
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise read_error(path, exc, what) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompressbenchError(f"{what} {path} is not valid JSON ({exc}); {wanted}") from None
    found = doc.get("format") if isinstance(doc, dict) else None
    if found == fmt:
        return doc
    # comparisons written before they carried a tag are still recognised by their sections
    known = WRITTEN_BY.get(found) or (WRITTEN_BY[COMPARISON_FORMAT] if isinstance(doc, dict) and {"rows", "chain"} <= set(doc) else None)
    if known:
        raise CompressbenchError(f"{path} is {known}, not a {what}; {wanted}")
    if found is None and untagged_ok and isinstance(doc, dict):
        return doc
    raise CompressbenchError(f"{path} is not a {what} (format {found!r}, expected {fmt!r}); {wanted}")


def read_results(path: str | Path) -> dict:
    """A results file written by ``compressbench bench``, checked section by section."""
    wanted = (
        "give the results JSON written by 'compressbench bench' (e.g. compressbench bench benchmarks/suite.toml "
        "-o results.json), or for 'compressbench report' a comparison JSON of 'compress' or 'search --results'"
    )
    doc = read_json_record(path, RESULTS_FORMAT, "compressbench results file", wanted)
    check_sections(doc, RESULTS_SCHEMA, f"results file {path}")
    check_comparison(doc["comparison"], f"results file {path}: comparison")
    return doc


def read_report_input(path: str | Path) -> dict:
    """What ``report`` renders, as a results document: a results file of ``bench``, or a comparison
    record of ``compress`` or ``search`` (``--results``), given the results file's sections (no
    suite, profiles or overlays: the report leaves those parts out)."""
    if _format_of(path) != COMPARISON_FORMAT:
        return read_results(path)
    comparison = json.loads(Path(path).read_text())
    check_comparison(comparison, f"comparison {path}")
    source = "search" if "front" in comparison else "compress"
    return {
        "format": RESULTS_FORMAT, "suite": f"{path} ({source} record)", "measure": {}, "stages": {},
        "comparison": comparison, "profiles": {}, "overlays": {}, "env": comparison.get("env", {}),
    }  # fmt: skip


def _format_of(path: str | Path):
    if input_file_problem(path) is not None:
        return None  # read_json_record names the problem (a FIFO is never opened: that would wait for a writer)
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # read_json_record names the problem
    return doc.get("format") if isinstance(doc, dict) else None


@dataclass(frozen=True)
class LatencySummary:
    """End-to-end latency of the clean forwards (ms): median and spread over ``runs`` timed rounds."""

    median: float
    p10: float
    p90: float
    iqr: float
    runs: int


@dataclass(frozen=True)
class ProfileRecord:
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

    def to_json(self) -> dict:
        """The record as written to files: the format tag, then the sections in field order."""
        return {"format": PROFILE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, where: str = "profile record") -> ProfileRecord:
        """Check ``data`` section by section (one error naming ``where`` and the key at fault) and
        build the record. A record without a format tag (written before profiles had one) is read if
        its sections are right; a different tag is refused. Sections beyond these are ignored."""
        found = data.get("format") if isinstance(data, dict) else None
        if found is not None and found != PROFILE_FORMAT:
            raise CompressbenchError(f"{where} is not a compressbench profile (format {found!r}, expected {PROFILE_FORMAT!r})")
        check_sections(data, PROFILE_SCHEMA, where)
        for key, kinds in PROFILE_ITEMS.items():
            check_items(data[key], kinds, f"{where}: '{key}'")
        check_sections(data["latency_ms"], LATENCY_SCHEMA, f"{where}: latency_ms")
        sections = {key: data[key] for key in PROFILE_SCHEMA}
        sections["latency_ms"] = LatencySummary(**{key: data["latency_ms"][key] for key in LATENCY_SCHEMA})
        return cls(**sections)


LATENCY_SCHEMA = {"median": NUMBER, "p10": NUMBER, "p90": NUMBER, "iqr": NUMBER, "runs": int}
PROFILE_SCHEMA = {
    "model": str, "params": int, "macs_fvcore": (int, type(None)), "macs_thop": (int, type(None)), "macs_notes": list,
    "size_mb": NUMBER, "latency_ms": dict, "batch": int, "input_size": int, "input_shape": list, "threads": int,
    "warmup": int, "seed": int, "modules": list, "blocks": list, "layers": list, "tree": list, "attribution": dict,
    "hourglass_layout": bool, "efficiency": dict, "health": dict, "runtime": dict, "env": dict,
}  # fmt: skip
# list section -> the type each of its entries must hold
PROFILE_ITEMS = {"macs_notes": str, "input_shape": int, "modules": dict, "blocks": dict, "layers": dict, "tree": dict}


def check_items(values: list, expected, where: str) -> None:
    """Raise one :class:`CompressbenchError` naming the first entry of ``values`` that is not ``expected``."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    for index, value in enumerate(values, start=1):
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CompressbenchError(f"{where} entry {index} must be {_type_names(expected)}, got {json.dumps(value)[:40]}")


def read_profile(path: str | Path) -> ProfileRecord:
    """A profile JSON written by ``compressbench profile --format json``, checked section by section."""
    wanted = "give the JSON written by 'compressbench profile' (e.g. compressbench profile --format json -o profile.json)"
    doc = read_json_record(path, PROFILE_FORMAT, "compressbench profile file", wanted, untagged_ok=True)
    return ProfileRecord.from_json(doc, f"profile file {path}")
