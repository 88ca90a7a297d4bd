"""``search``: the fastest variant of a model that still agrees with it within an AKD bound.

Candidates are chains of registered methods (prune ratios and importances, exact, quantize,
convolution swaps) plus saved models given with ``include``. Every structural candidate gets
``recover`` stages after its structural stages. The training budget goes where it pays, by
successive halving: every candidate that could still beat the fastest variant known to be within the
bound is recovered for a few steps, the better half of the heads by validation AKD (each with all
its tails) is recovered for twice the steps *more*, continuing from its own weights (each round is one more ``recover`` stage, with its own
cosine schedule trained to its end, so a variant's chain records every round it was trained for), and so on. Candidates
that differ only after ``recover`` (a pruned head and its ``+exact``/``+int8`` tails, which are
train-free) share one recovery, and of two heads that differ only by the learned input stage
(``prune-0.7``, ``prune-0.7+stem``), which recover alike, only the one faster on the probe trains. A candidate whose latency cannot beat that fastest variant is not
trained at all (``recover`` changes weights, not structure, so its latency is known before
training). A round that leaves a candidate worse on validation is undone (it keeps its earlier weights,
trains no further and takes no place in later rounds). Once the survivors are settled (validation AKD 5% inside the bound: the held-out frames
that decide differ) they cannot get faster by training, so the budget goes back to the faster
candidates that halving had dropped, continuing from their last weights; when there are none, the
fastest variant within the bound goes on training (a wider margin on frames it was not selected
on). On an int8 runtime that can keep layers float, the precision pass
(:mod:`compressbench.search_precision`) then gives the fastest candidates that int8 alone pushes
out of the bound a mixed precision, each a candidate of its own. The survivors are measured interleaved with the teacher in one
:func:`compressbench.comparison.compare` run, which gives the Pareto front (latency against AKD) and
the fastest variant within the bound.

Everything a trained head's weights depend on (teacher weights, stages up to the last recover,
options, every round's recover steps, seed, data, frame size) keys a cache of saved variants, so an
interrupted search resumes without redoing finished rounds. Validation AKD uses calibration frames;
the final AKD uses the held-out evaluation frames, which no candidate ever trained or was selected
on before the end.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from compressbench.comparison import compare
from compressbench.comparison.fidelity import collect_outputs, fidelity
from compressbench.comparison.saving import save_compressed
from compressbench.compression import METHODS, get_method
from compressbench.compression.prune import format_block_ratios
from compressbench.compression.prune_plan import measure_block_times, plan_like_uniform
from compressbench.compression.recover import resolved_schedule
from compressbench.data.holdout import FrameSource
from compressbench.distillation.finetune import FinetuneSettings, step_cost, training_step_s
from compressbench.errors import CompressbenchError
from compressbench.files import check_writable, write_atomic
from compressbench.metrics import fastest_within
from compressbench.metrics import pareto_front as front_names
from compressbench.profiling.counting import count_params
from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.provenance import (
    Provenance,
    Variant,
    derive,
    load_model,
    load_variant,
    provenance_of,
    read_model_file,
    save_variant,
)
from compressbench.records import BudgetSplit, SearchRecord
from compressbench.runtimes import RuntimeUnavailable, check_runtime, prepare
from compressbench.search_precision import Contender, ValidationFrames, precision_pass, skip_reason
from compressbench.search_schedule import (
    BET_MARGIN,
    MIN_FIRST_STEPS,
    STEP_UNIT,
    Schedule,
    budget_schedule,
    steps_to_reach,
)
from compressbench.search_workers import (
    TrainJob,
    TrainResult,
    TrainSetup,
    cached_calibration,
    check_workers,
    make_pool,
    training_context,
)
from compressbench.suite import VariantSpec, suite_text

DEFAULT_METHODS = ("prune", "exact", "quantize", "asym", "stem", "recover", "mixed")
PRUNE_RATIOS = (0.3, 0.5, 0.7)
PLAN_RATIOS = (0.5, 0.7, 0.8)  # latency-aware plans predicted as fast as uniform prune at these ratios
PRUNE_IMPORTANCES = ("l2",)
ASYM_RANK_RATIOS = (0.5,)
DSCONV_MULTIPLIERS = (1,)
CALIBRATION_FRAMES = 64  # int8 runtimes calibrate on these (never on the evaluation frames)
# warm-up and timed interleaved rounds of the latency probe before training: rounds cost milliseconds
# (preparing the runtimes is the probe's cost); with 2 warm-up and 8 timed rounds the probe's medians
# of OpenVINO int8 skeletons were about twice the final run's (search-20m-1px-median-screen.json)
LATENCY_ROUNDS = (5, 20)
SETTLED_FRACTION = 0.95  # a candidate stops training once its validation AKD is this far inside the bound:
# it was selected on its validation frames, and the held-out frames that decide usually differ by a few percent
CACHE_VERSION = 2  # 2: only the trained head (structural stages + recovers) is cached
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


# Where users ship, in the order a search defaults to: the first installed is where candidates are
# timed, the others get the front measured on them too.
SHIPPING_RUNTIMES = (("openvino", "int8"), ("onnxruntime", "int8"))


def _installed(runtime: str) -> bool:
    try:
        check_runtime(runtime, "fp32")
    except CompressbenchError:
        return False
    return True


def shipping_runtime() -> tuple[str, str]:
    """(runtime, precision) a search times candidates on by default: the first installed of
    :data:`SHIPPING_RUNTIMES`, else eager torch fp32."""
    return next(((name, precision) for name, precision in SHIPPING_RUNTIMES if _installed(name)), ("torch", "fp32"))


def parse_budget(text: str | float | int) -> float:
    """``"60m"`` -> 3600.0 seconds (``s``, ``m``, ``h``; a bare number is seconds); must be positive."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _BUDGET.match(str(text))
        if not match:
            raise CompressbenchError(f"--budget {text!r} is not a duration; give e.g. 90s, 60m or 1.5h")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not seconds > 0 or not math.isfinite(seconds):
        raise CompressbenchError(f"--budget must be a positive duration, got {text!r}")
    return seconds


# A round trains its full cosine schedule: stopping it early (recover's own default, patience 5)
# would keep weights from before the schedule anneals, and rounds that end worse are undone anyway.
SEARCH_RECOVER_DEFAULTS = {"patience": 0}
# A round that continues an earlier one starts Adam afresh: at the first round's lr and without a
# warm-up its first 100 steps undid more than its last ones bought (prune-0.3 after 1,500 steps:
# 1,600 more at 5e-4 gained 0.02 px, at 1.5e-4 0.27 px; benchmarks/results/amd-epyc-avx512/
# continue-low-lr.json). So it runs at this fraction of the lr, warming up over this fraction of its steps.
CONTINUE_LR_FRACTION = 0.3
CONTINUE_WARMUP_FRACTION = 0.1
# Validation AKD after a few hundred steps orders candidates only roughly (the 60-minute search of
# benchmarks/results/amd-epyc-avx512/search-60m-continued.json: prune-0.3 led prune-0.5 by 8% at 300
# steps), and the bound rewards speed: within this fraction of the round's best, the faster goes first.
NEAR_TIE_FRACTION = 0.10


@dataclass(frozen=True)
class Candidate:
    """One chain to try (``stages``: ``{"method", "options"}`` without recover) or a saved model."""

    name: str
    stages: tuple = ()
    include: str | None = None

    @property
    def structural(self) -> bool:
        return any(get_method(s["method"]).structural for s in self.stages)

    @property
    def head_end(self) -> int:
        """Where the structural head ends: the index after the last structural stage (0 without one)."""
        return max((i + 1 for i, s in enumerate(self.stages) if get_method(s["method"]).structural), default=0)

    @property
    def family(self) -> str:
        """The stages recover trains (up to the last structural one): a head and its tails share it."""
        return json.dumps(self.stages[: self.head_end], sort_keys=True, default=str)

    def with_recover(self, rounds: list[int], recover: dict) -> list[dict]:
        """The stages with one ``recover`` per training round (``rounds``: each round's steps, every
        round continuing from the last) after the last structural stage. Rounds after the first run
        at ``CONTINUE_LR_FRACTION`` of the lr with a warm-up, so they go on from the weights they
        were given instead of jolting them."""
        stages = [dict(s) for s in self.stages]
        end = self.head_end
        method = get_method("recover")
        given = method.resolve({**SEARCH_RECOVER_DEFAULTS, **recover, "steps": rounds[0]})
        # the first round's lr is written out, because the continuation rounds' lr is a fraction of it
        given["lr"] = resolved_schedule(given)["lr"]
        recovers = [{"method": "recover", "options": given}] + [
            {"method": "recover", "options": method.resolve({**given, "steps": n, "lr": given["lr"] * CONTINUE_LR_FRACTION,
                                                              "warmup": int(n * CONTINUE_WARMUP_FRACTION)})}
            for n in rounds[1:]
        ]  # fmt: skip
        return stages[:end] + recovers + stages[end:]


@dataclass
class SearchOptions:
    """Everything that decides a search."""

    max_akd: float = 1.0
    budget: str | float = "60m"
    methods: tuple[str, ...] = DEFAULT_METHODS
    include: tuple[str, ...] = ()
    data: str = "synthetic"
    frames: int = 32  # held-out evaluation frames
    size: int = 256
    seed: int = 0
    min_steps: int | None = None  # the first round's recover steps (None: set by the budget, compressbench.search_schedule)
    max_steps: int = 6400  # no candidate trains more steps than this over all its rounds
    recover: dict = field(default_factory=dict)  # recover options other than steps (pool, lr, ...)
    val_frames: int = 64
    threads: int | None = None
    warmup: int = 5
    repeats: int = 20
    batch: int = 1
    runtime: str | None = None  # where candidates are timed (None: the shipping runtime installed, see shipping_runtime)
    precision: str | None = None  # None: int8 on a shipping runtime, fp32 on torch
    plan: bool = True  # add latency-aware per-block prune candidates planned from the runtime's per-op times
    fronts_on: tuple[str, ...] | None = None  # other runtimes the front is measured on (None: the other shipping ones installed)
    cache: Path | None = None
    progress: bool = True
    workers: int = 1  # trainers of recover rounds: 1 trains in this process; more train on Ray (compressbench.search_workers)
    ray_address: str | None = None  # a Ray cluster to train on (None: a local Ray, when workers > 1)
    train_threads: int | None = None  # torch threads of each training (None: this process's; on Ray, CPUs / workers)

    def resolved(self) -> SearchOptions:
        """These options with the runtime, precision and fronts' runtimes filled in: by default the
        search times candidates where users ship (:func:`shipping_runtime`)."""
        runtime, precision = self.runtime, self.precision
        if runtime is None:
            runtime, shipping_precision = shipping_runtime()
            precision = precision or shipping_precision
        precision = precision or "fp32"
        fronts_on = self.fronts_on
        if fronts_on is None:
            fronts_on = tuple(name for name, _ in SHIPPING_RUNTIMES if name != runtime.partition(":")[0] and _installed(name))
        return replace(self, runtime=runtime, precision=precision, fronts_on=tuple(fronts_on))

    @property
    def candidate_methods(self) -> tuple[str, ...]:
        """The methods the candidate grid is built from: ``methods`` less ``quantize`` where the
        runtime quantizes for itself (any runtime but torch, or torch in int8), since torch's int8
        modules do not run on the other runtimes and torch int8 already is the quantize chain."""
        own_int8 = (self.runtime or "torch").partition(":")[0] != "torch" or self.precision == "int8"
        return tuple(m for m in self.methods if not (own_int8 and m == "quantize"))

    def validate(self) -> float:
        """Reject bad input before any work; returns the budget in seconds."""
        if not (isinstance(self.max_akd, (int, float)) and self.max_akd > 0):
            raise CompressbenchError(f"--max-akd must be a positive number of pixels, got {self.max_akd}")
        seconds = parse_budget(self.budget)
        if self.runtime is None or self.precision is None:
            raise CompressbenchError("resolve the runtime first: SearchOptions.resolved()")
        check_runtime(self.runtime, self.precision)  # unknown or not installed: one line, before any work
        check_workers(self.workers, self.ray_address, self.train_threads)  # Ray asked for but missing: one line
        for name in self.fronts_on or ():
            check_runtime(name, self.precision)
        for name in ("frames", "size", "min_steps", "max_steps", "val_frames", "repeats", "batch"):
            value = getattr(self, name)
            if name == "min_steps" and value is None:
                continue
            if not isinstance(value, int) or value <= 0:
                raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise CompressbenchError(f"--warmup must be zero or more, got {self.warmup!r}")
        if self.min_steps is not None and self.max_steps < self.min_steps:
            raise CompressbenchError(f"--max-steps {self.max_steps} is below --min-steps {self.min_steps}")
        for name in self.methods:
            if name not in METHODS.names():
                raise CompressbenchError(
                    f"unknown compression method {name!r} in the candidates; known: {', '.join(METHODS.names())}"
                )
        if "steps" in self.recover:
            raise CompressbenchError("recover.steps is what the search decides; bound it with --min-steps and --max-steps")
        resolved = get_method("recover").resolve(self.recover)
        first = self.min_steps if self.min_steps is not None else min(MIN_FIRST_STEPS, self.max_steps)
        if resolved["warmup"] > first:
            raise CompressbenchError(
                f"recover.warmup {resolved['warmup']} is longer than the first round "
                + (f"(--min-steps {self.min_steps})" if self.min_steps is not None else f"(a budget-set first round can be {first} steps)")
            )
        if self.data != "synthetic" and not Path(self.data).exists():
            raise CompressbenchError(f"--data {self.data} does not exist; give 'synthetic', a folder of images or a video file")
        return seconds


def _stage(method: str, **options) -> dict:
    return {"method": method, "options": get_method(method).resolve(options)}


def _tails(allowed: set[str]) -> list[tuple[str, list[dict]]]:
    """The train-free chains tried after every structural head (and alone): folded, int8, both."""
    tails: list[tuple[str, list[dict]]] = [("", [])]
    if "exact" in allowed:
        tails.append(("+exact", [_stage("exact")]))
    if "quantize" in allowed:
        tails.append(("+int8", [_stage("quantize")]))
        if "exact" in allowed:
            tails.append(("+exact+int8", [_stage("exact"), _stage("quantize")]))
    return tails


def planned_candidates(methods: tuple[str, ...], plans: dict[float, dict[str, float]]) -> list[Candidate]:
    """``prune-lat-R`` heads (per-block ratios planned to be as fast as uniform prune ``R``) with
    every tail ``methods`` allow; none unless prune and recover are both allowed."""
    allowed = set(methods)
    if not {"prune", "recover"} <= allowed:
        return []
    heads = [(f"prune-lat-{ratio:g}", [_stage("prune", ratio=ratio, ratios=format_block_ratios(blocks))]) for ratio, blocks in plans.items()]
    heads += _with_cheaper_ends(heads, allowed)
    return [Candidate(name + tail, tuple(head + t)) for name, head in heads for tail, t in _tails(allowed)]


# The fixed stages pruning leaves, as the methods that make them cheaper: the learned input stage
# (``stem``) and the smaller heads (``heads``). After pruning they are a larger share: on the AVX2-capped
# OpenVINO int8 prune-lat-0.8+exact skeleton +stem is 1.11x faster, +heads 1.14x, both 1.31x
# (benchmarks/results/amd-epyc-avx512-as-avx2/ends-latency.json).
END_METHODS = ("stem", "heads")


def _with_cheaper_ends(heads: list[tuple[str, list[dict]]], allowed: set[str]) -> list[tuple[str, list[dict]]]:
    """Each pruned head also with every combination of the allowed :data:`END_METHODS`, in that order
    (prune-0.7+stem, prune-0.7+heads, prune-0.7+stem+heads)."""
    ends = [m for m in END_METHODS if m in allowed]
    combos = [list(c) for r in range(1, len(ends) + 1) for c in itertools.combinations(ends, r)]
    pruned = [(name, h) for name, h in heads if h[0]["method"] == "prune"]
    return [(name + "".join(f"+{m}" for m in combo), h + [_stage(m) for m in combo]) for combo in combos for name, h in pruned]


def _prune_only(candidate: Candidate) -> bool:
    return bool(candidate.stages) and all(s["method"] == "prune" for s in candidate.stages if get_method(s["method"]).structural)


def _tail_key(candidate: Candidate) -> str:
    return json.dumps(candidate.stages[candidate.head_end :], sort_keys=True, default=str)


def screen(
    candidates: list[Candidate], latency: dict[str, float], params: dict[str, int], spread: dict[str, tuple[float, float]]
) -> tuple[list[Candidate], list[dict]]:
    """Before any training: drop each pruned candidate that another pruned candidate with the same
    tail beats on its skeleton's measured latency beyond the probe's spread (the rival's p90 below
    the candidate's p10; ``spread``: name -> (p10, p90) ms) while keeping at least as many
    parameters, since training changes neither. A difference inside the spread screens nothing: a
    probe of a few rounds ordered skeletons 3-8% apart the wrong way round
    (benchmarks/results/amd-epyc-avx512/search-20m-1px-median-screen.json screened prune-0.5+exact
    behind prune-lat-0.5+exact, 2.027 vs 2.183 ms, which an earlier final run had timed 11% slower). Returns
    the kept candidates (in the given order) and a log entry per dropped one."""
    kept, log = [], []
    spread = {name: spread.get(name, (ms, ms)) for name, ms in latency.items()}  # unprobed: its median, no spread
    for c in candidates:
        rival = None
        if _prune_only(c) and math.isfinite(latency[c.name]):  # one the runtime cannot run is not compared
            rival = next(
                (d for d in candidates if d is not c and _prune_only(d) and _tail_key(d) == _tail_key(c) and math.isfinite(latency[d.name])
                 and spread[d.name][1] < spread[c.name][0] and params[d.name] >= params[c.name]),
                None,
            )  # fmt: skip
        if rival is None:
            kept.append(c)
        else:
            log.append({"candidate": c.name, "steps": 0, "skipped": (
                f"screened before training: {rival.name} is faster beyond the probe's spread (p90 {spread[rival.name][1]:.3f} "
                f"ms below p10 {spread[c.name][0]:.3f} ms) with as many or more parameters ({params[rival.name]:,} vs {params[c.name]:,})")})
    return kept, log


# Ends whose sibling without them recovers alike, so only the faster of the two is trained: at 50, 150
# and 350 recover steps each prune-R+stem's validation AKD was within 3.1% of prune-R's, ahead in 8 of 11
# (the logs of benchmarks/results/amd-epyc-avx512/search-20m-stem.json and search-20m-1px-stem.json), while training both gave
# every round twice the heads and the fastest head a quarter of the steps. The smaller heads have no
# such record: both siblings train.
RECOVER_ALIKE_ENDS = ("stem",)


def _without_alike_ends(candidate: Candidate) -> str:
    head = [s for s in candidate.stages[: candidate.head_end] if s["method"] not in RECOVER_ALIKE_ENDS]
    return json.dumps(head, sort_keys=True, default=str)


def one_per_end_sibling(candidates: list[Candidate], latency: dict[str, float]) -> tuple[list[Candidate], list[dict]]:
    """Before any training: of two trained heads that differ only by an end in
    :data:`RECOVER_ALIKE_ENDS` (``prune-0.7`` and ``prune-0.7+stem``), keep the family whose fastest
    tail has the lower probe median, and drop every candidate of the other. Unlike :func:`screen`,
    the choice does not wait for a difference beyond the probe's spread: the siblings train to the
    same accuracy, so a wrong choice inside the spread costs only that difference in latency, and
    training both costs every round a head. A head left with nothing once its ends are removed (the
    stem alone, whose sibling is the untrained model) is not paired. Returns the kept candidates (in
    the given order) and a log entry per dropped one."""
    families: dict[str, list[Candidate]] = {}
    for c in candidates:
        families.setdefault(c.family, []).append(c)
    fastest = {family: min(latency[c.name] for c in members) for family, members in families.items()}
    by_base: dict[str, list[str]] = {}
    for family, members in families.items():
        base = _without_alike_ends(members[0])
        if base != "[]" and members[0].structural:
            by_base.setdefault(base, []).append(family)
    dropped: dict[str, str] = {}  # family -> the family kept instead
    for siblings in by_base.values():
        if len(siblings) < 2:
            continue
        kept = min(siblings, key=lambda f: (fastest[f], len(families[f][0].stages)))  # a tie keeps the simpler
        if not math.isfinite(fastest[kept]):
            continue  # the runtime runs neither: nothing to choose on
        dropped.update({f: kept for f in siblings if f != kept})
    log = []
    for c in candidates:
        if c.family in dropped:
            winner = families[dropped[c.family]]
            rival = min(winner, key=lambda d: latency[d.name])
            log.append({"candidate": c.name, "steps": 0, "skipped": (
                f"screened before training: its sibling {rival.name} is faster on the probe ({latency[rival.name]:.3f} vs "
                f"{fastest[c.family]:.3f} ms, each family's fastest tail) and they recover alike, so one of them trains")})
    return [c for c in candidates if c.family not in dropped], log


def default_candidates(methods: tuple[str, ...]) -> list[Candidate]:
    """The grid the registered methods suggest, limited to ``methods``: each structural variant (prune
    ratios and importances, asym ranks, dsconv multipliers) alone, folded (exact) and in int8, and the
    exact/quantize chains of the unchanged model."""
    allowed = set(methods)
    tails = _tails(allowed)
    heads: list[tuple[str, list[dict]]] = []
    if "prune" in allowed:
        heads += [
            (f"prune-{ratio}" + ("" if importance == "l2" else f"-{importance}"), [_stage("prune", ratio=ratio, importance=importance)])
            for ratio in PRUNE_RATIOS
            for importance in PRUNE_IMPORTANCES
        ]
    if "asym" in allowed:
        heads += [(f"asym-{r}", [_stage("asym", rank_ratio=r)]) for r in ASYM_RANK_RATIOS]
    if "dsconv" in allowed:
        heads += [(f"dsconv-{m}", [_stage("dsconv", multiplier=m)]) for m in DSCONV_MULTIPLIERS]
    heads += _with_cheaper_ends(heads, allowed)
    if "stem" in allowed:
        heads.append(("stem", [_stage("stem")]))
    out = []
    if "recover" in allowed:  # structural candidates are only worth trying with recovery
        out += [Candidate(head + tail, tuple(h + t)) for head, h in heads for tail, t in tails]
    out += [Candidate(tail.lstrip("+"), tuple(t)) for tail, t in tails if t]
    return out


def teacher_key(teacher: nn.Module) -> str:
    """A digest of the teacher's weights: a cached candidate belongs to exactly these weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        if not isinstance(tensor, torch.Tensor):
            digest.update(repr(tensor).encode())
            continue
        values = tensor.detach().cpu()
        values = values.int_repr() if values.is_quantized else values
        digest.update(values.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class CandidateCache:
    """Saved variants keyed by everything that changes them (``None`` folder: no cache)."""

    def __init__(self, folder: Path | None, context: dict) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.context = context
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CompressbenchError(
                    f"--cache {self.folder}: cannot create the folder ({(exc.strerror or type(exc).__name__).lower()}); "
                    "give a folder path that can be created"
                ) from None
            if not self.folder.is_dir():
                raise CompressbenchError(f"--cache {self.folder} is a file; give a folder path")
            check_writable(self.folder / "candidate.pt")  # before any training, not when the first result is saved

    def key(self, stages: list[dict]) -> str:
        payload = json.dumps({"v": CACHE_VERSION, "stages": stages, **self.context}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def has(self, stages: list[dict]) -> bool:
        if self.folder is None:
            return False
        key = self.key(stages)
        return (self.folder / f"{key}.pt").is_file() and (self.folder / f"{key}.json").is_file()

    def get(self, stages: list[dict]) -> tuple[nn.Module, Provenance, dict] | None:
        if self.folder is None:
            return None
        key = self.key(stages)
        model, meta = self.folder / f"{key}.pt", self.folder / f"{key}.json"
        if not (model.is_file() and meta.is_file()):
            return None
        module, provenance, _ = read_model_file(model)
        return module, provenance, json.loads(meta.read_text())

    def _schedule_path(self, plan: dict) -> Path:
        digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "plan": plan, **self.context}, sort_keys=True, default=str).encode())
        return self.folder / f"schedule-{digest.hexdigest()[:24]}.json"

    def schedule(self, plan: dict) -> Schedule | None:
        """The schedule an earlier run with the same ``plan`` inputs chose (None: no cache, or none yet)."""
        if self.folder is None or not self._schedule_path(plan).is_file():
            return None
        data = json.loads(self._schedule_path(plan).read_text())
        return Schedule(**{**data, "rounds": tuple(data["rounds"])})

    def put_schedule(self, plan: dict, schedule: Schedule) -> None:
        if self.folder is not None:
            write_atomic(self._schedule_path(plan), json.dumps(schedule.to_json()))

    def put(self, stages: list[dict], variant: Variant, info: dict) -> None:
        if self.folder is None:
            return
        key = self.key(stages)
        model, meta = self.folder / f"{key}.pt", self.folder / f"{key}.json"
        temporary = self.folder / f".{key}.pt.tmp"
        save_variant(variant, temporary)
        temporary.replace(model)
        meta.write_text(json.dumps(info, default=str))  # written last: its presence marks a finished entry


@dataclass
class Trial:
    """A candidate at one recovery budget: its variant, validation AKD and probe latency."""

    candidate: Candidate
    steps: int
    variant: Variant
    val_akd_px: float
    latency_ms: float
    train_seconds: float = 0.0
    cached: bool = False
    recovered_by: str = ""  # "candidate@steps" whose recovery this trial's head is (tails share it)


def pareto_front(rows: list[dict]) -> list[dict]:
    """The rows of :func:`compressbench.metrics.pareto_front` (no other row at least as fast
    and as close while strictly better in one), sorted by latency."""
    names = set(front_names(rows))
    return sorted((r for r in rows if r["variant"] in names), key=lambda r: r["latency_ms"])


def rank(trials: list[Trial]) -> list[Trial]:
    """Trials best first for halving: those within ``NEAR_TIE_FRACTION`` of the best validation AKD,
    fastest first, then the rest by validation AKD (ties by latency)."""
    if not trials:
        return []
    near = min(t.val_akd_px for t in trials) * (1 + NEAR_TIE_FRACTION)
    return sorted(trials, key=lambda t: (t.val_akd_px > near, t.latency_ms if t.val_akd_px <= near else t.val_akd_px, t.latency_ms))


def _split_after_recover(stages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the stages up to and including the last ``recover``: what is trained and cached, the
    train-free rest); no ``recover``: ``([], stages)``."""
    cut = max((i + 1 for i, s in enumerate(stages) if s["method"] == "recover"), default=0)
    return stages[:cut], stages[cut:]


class _Search:
    def __init__(self, teacher: nn.Module, options: SearchOptions, start: Provenance, budget_s: float) -> None:
        self.teacher = teacher.eval()
        self.options = options
        self.start = start
        self.budget_s = budget_s
        self.spent_s = 0.0
        self.frames = FrameSource(options.data, options.frames, options.seed, options.size)
        # every candidate's recover and quantize stages ask for the same frames: made once, and every
        # training worker makes the very same context (compressbench.search_workers)
        self.setup = TrainSetup(options.data, options.frames, options.seed, options.size)
        calibration = cached_calibration(self.frames)
        self.context = training_context(self.setup, self.teacher, "cpu", calibration)
        self.val_images = calibration(options.val_frames)[: options.val_frames].float()
        self.timed = self.val_images[: options.batch]
        self.cache = CandidateCache(
            options.cache,
            {"teacher": teacher_key(teacher), "start": start.to_json(with_reports=False), "seed": options.seed,
             "data": options.data, "size": options.size},
        )
        self.variants: dict[str, Variant] = {}
        self.heads: dict[str, tuple[Variant, str]] = {}  # trained heads, shared by their tails and continued by later rounds
        self.trained: list[str] = []  # "name@steps" actually trained in this run (not from the cache)
        self.log: list[dict] = []
        self.latency_spread: dict[str, tuple[float, float]] = {}  # the probe's p10 and p90 ms per name
        self.per_step_s: float | None = None  # seconds per recover step, from the latest training
        self.family_step_s: dict[str, float] = {}  # seconds per recover step of each head, from its latest training
        self.curves: dict[str, list[tuple[int, float]]] = {}  # each candidate's (total steps, validation AKD)
        self._teacher_runner: Callable | None = None
        # who trains the recover rounds (this process, or Ray workers; started on the first training)
        self.pool = make_pool(self.teacher, start, self.setup, self.context, options.workers, options.ray_address, options.train_threads)
        self.workers_info: dict = self.pool.info()  # how many workers trained and on what; final after run()
        self._fresh: dict[str, float] = {}  # heads a parallel round trained ahead, not yet taken: training seconds
        # where the search's time went: timing skeletons and planning before training, training, final timing
        self.budget_split = {"screening_s": 0.0, "training_s": 0.0, "precision_s": 0.0, "timing_s": 0.0}
        self.block_times: dict | None = None  # the teacher's per-block times the prune plans came from
        self.plans: dict[str, dict[str, float]] = {}  # "prune-lat-R" -> its per-block ratios
        self.schedule = Schedule(options.min_steps or MIN_FIRST_STEPS, "--min-steps" if options.min_steps else "budget")

    def planned(self) -> list[Candidate]:
        """Latency-aware prune candidates: the teacher's blocks timed on the search's runtime and
        precision, and per-block ratios planned from them (:mod:`compressbench.compression.prune_plan`)
        for each of ``PLAN_RATIOS``. None where prune/recover are not allowed or the model is not an
        hourglass the plan can model (logged)."""
        opts = self.options
        if not opts.plan or not {"prune", "recover"} <= set(opts.methods):
            return []
        started = time.perf_counter()
        try:
            times = measure_block_times(self.teacher, opts.runtime, opts.precision, opts.threads, size=opts.size,
                                        show_progress=opts.progress)  # fmt: skip
        except CompressbenchError as exc:
            self.log.append({"candidate": "prune-lat", "steps": 0, "skipped": f"no latency plan: {exc}"})
            return []
        finally:
            self.budget_split["screening_s"] += time.perf_counter() - started
        plans = {ratio: plan_like_uniform(times, self.teacher, ratio) for ratio in PLAN_RATIOS}
        self.block_times = times.to_json()
        self.plans = {f"prune-lat-{ratio:g}": blocks for ratio, blocks in plans.items()}
        return planned_candidates(opts.candidate_methods, plans)

    def fronts_elsewhere(self, front: list[str]) -> dict[str, dict]:
        """The front's variants (and the teacher) measured on each of ``fronts_on`` too, one
        interleaved run per runtime: ``{"runtime precision": {"front", "winner", "rows"}}``."""
        opts = self.options
        variants = [self.variants[name] for name in front if name in self.variants]
        out = {}
        for runtime in opts.fronts_on or ():
            if not variants:
                break
            record = compare(
                self.teacher, variants, self.frames.evaluation(), threads=opts.threads, warmup=opts.warmup,
                repeats=opts.repeats, batch=opts.batch, show_progress=opts.progress, breakdown=False,
                runtime=runtime, precision=opts.precision,
                calibration=self.context.calibration_frames(CALIBRATION_FRAMES) if opts.precision == "int8" else None,
            )  # fmt: skip
            rows = [r for r in record["rows"][1:] if r.get("latency_ms") is not None]
            winner = fastest_within(record["rows"], opts.max_akd)
            out[f"{runtime} {opts.precision}"] = {
                "front": [r["variant"] for r in pareto_front(rows)],
                "winner": winner["variant"] if winner else None,
                "rows": [{k: r.get(k) for k in ("variant", "latency_ms", "speedup", "speedup_vs_eager_fp32", "akd_px", "precision")}
                         for r in record["rows"]],
            }  # fmt: skip
        return out

    # --- building and scoring -------------------------------------------------------------------
    def build(self, candidate: Candidate, stages: list[dict]) -> tuple[Variant, float, bool, str]:
        """The candidate's variant, the training seconds it cost, whether its training was reused, and
        which "candidate@steps" trained its head ("" without recover).

        Only the stages up to ``recover`` are trained and cached: candidates that share them (a head
        and its ``+exact``/``+int8`` tails) share one recovery, and the train-free tail is applied on
        top of it."""
        if candidate.include is not None:
            return load_variant(candidate.include, name=candidate.name), 0.0, True, ""
        head, tail = _split_after_recover(stages)
        seconds, reused, trainer = 0.0, True, ""
        if head:
            (base, trainer), seconds, reused = self._recovered(candidate, head)
        else:
            base = Variant(candidate.name, self.teacher, self.start)
        if tail:
            base = derive(base.module, [s["method"] for s in tail], [s["options"] for s in tail], self.context, provenance=base.provenance)[-1]
        variant = copy.copy(base)
        variant.name = candidate.name
        return variant, seconds, reused, trainer

    def _head_ready(self, stages: list[dict]) -> bool:
        """Whether the stages' trained head is in memory or in the cache (no training needed)."""
        head, _ = _split_after_recover(stages)
        return not head or self.cache.key(head) in self.heads or self.cache.has(head)

    def _recovered(self, candidate: Candidate, head: list[dict]) -> tuple[tuple[Variant, str], float, bool]:
        """The trained head (structural stages + recovers) and who trained it: from memory, the cache,
        or trained now by the pool. A head whose last recover continues an earlier round trains only
        that round, on top of the earlier head (itself from memory, the cache, or trained first, in
        the same job). A head a parallel round trained ahead (:meth:`_train_ahead`) counts as trained
        for its first taker, with the seconds its worker trained it for."""
        ready = self._ready_head(candidate, head)
        if ready is not None:
            key = self.cache.key(head)
            if key in self._fresh:
                return ready, self._fresh.pop(key), False
            return ready, 0.0, True
        job, heads = self._job(candidate, head)
        ((_, result),) = list(self.pool.run([job]))
        self._keep(heads, job, result)
        return self.heads[self.cache.key(head)], sum(result.seconds), False

    def _ready_head(self, candidate: Candidate, head: list[dict]) -> tuple[Variant, str] | None:
        """The trained head and who trained it, from memory or the cache (then kept in memory); None
        when it still has to be trained."""
        key = self.cache.key(head)
        if key in self.heads:
            return self.heads[key]
        hit = self.cache.get(head)
        if hit is None:
            return None
        module, provenance, info = hit
        steps = sum(s["options"]["steps"] for s in head if s["method"] == "recover")
        self.heads[key] = (Variant(candidate.name, module.eval(), provenance), info.get("trained_by", f"{candidate.name}@{steps}"))
        return self.heads[key]

    def _job(self, candidate: Candidate, head: list[dict]) -> tuple[TrainJob, list[list[dict]]]:
        """What training ``head`` still needs: from the latest of its earlier rounds' heads that is in
        memory or the cache (else from the teacher), one segment per round after it; and the heads
        (stage lists) the segments end in, each cached when trained."""
        cuts = [i + 1 for i, s in enumerate(head) if s["method"] == "recover"]
        begin, start = 0, None
        for cut in reversed(cuts[:-1]):
            ready = self._ready_head(candidate, head[:cut])
            if ready is not None:
                begin, start = cut, ready[0]
                break
        ends = [cut for cut in cuts if cut > begin]
        segments = tuple(tuple(head[a:b]) for a, b in zip([begin, *ends], ends))
        labels = tuple(f"{candidate.name}@{sum(s['options']['steps'] for s in head[:b] if s['method'] == 'recover')}" for b in ends)
        return TrainJob(segments, labels, start), [head[:b] for b in ends]

    def _keep(self, heads: list[list[dict]], job: TrainJob, result: TrainResult) -> None:
        """Cache (this process alone writes the cache, whichever worker trained) and keep in memory
        the heads a job trained; each cache entry's seconds count its earlier rounds in the job too."""
        seconds = 0.0
        for stages, label, variant, spent in zip(heads, job.labels, result.heads, result.seconds):
            seconds += spent
            self.cache.put(stages, variant, {"seconds": seconds, "trained_by": label, "worker": result.worker})
            self.heads[self.cache.key(stages)] = (variant, label)

    def score(self, variant: Variant) -> float:
        reference = collect_outputs(self.teacher, self.val_images)
        got = collect_outputs(variant.module, self.val_images)
        return float(fidelity(got, reference, int(self.val_images.shape[-1]))["akd_px"])

    def teacher_runner(self) -> Callable:
        """The teacher on the search's runtime and precision, prepared once. Every speedup is taken
        against it, so a runtime or precision it cannot run on is the user's error, found before
        any candidate is built."""
        if self._teacher_runner is None:
            opts = self.options
            with torch_threads(opts.threads) as threads:
                calibration = self.context.calibration_frames(CALIBRATION_FRAMES) if opts.precision == "int8" else None
                try:
                    runner = prepare(opts.runtime, self.teacher, self.timed, threads, opts.precision, calibration)
                except RuntimeUnavailable as exc:
                    raise CompressbenchError(
                        f"the model cannot run on --runtime {opts.runtime} --precision {opts.precision}, so no candidate "
                        f"can be timed against it: {exc}"
                    ) from None
                self._teacher_runner = runner
        return self._teacher_runner

    def latencies(self, variants: list[Variant]) -> dict[str, float]:
        """Median ms of each variant (and the teacher) on the search's runtime, one short interleaved
        probe. A variant the runtime cannot run (e.g. FX int8 in OpenVINO) gets infinity: it cannot win."""
        opts = self.options
        fns: dict[str, Callable] = {"__teacher__": self.teacher_runner()}
        with torch_threads(opts.threads) as threads:
            calibration = self.context.calibration_frames(CALIBRATION_FRAMES) if opts.precision == "int8" else None
            label = f"timing {len(variants)} untrained candidates on {opts.runtime} {opts.precision}"
            with progress_bar(label, len(variants) + LATENCY_ROUNDS[1], opts.progress) as advance:
                for name, module in [(v.name, v.module.eval()) for v in variants]:
                    try:
                        fns[name] = prepare(opts.runtime, module, self.timed, threads, opts.precision, calibration)
                    except RuntimeUnavailable:
                        continue
                    finally:
                        advance(1, candidate=name)
                with torch.inference_mode():
                    stats = measure_interleaved(fns, *LATENCY_ROUNDS, on_round=lambda _: advance(1))
        names = ["__teacher__", *(v.name for v in variants)]
        self.latency_spread.update({name: (stats[name].p10, stats[name].p90) if name in stats else (math.inf, math.inf) for name in names})
        return {name: stats[name].median if name in stats else math.inf for name in names}

    # --- the search -----------------------------------------------------------------------------
    def run(self, candidates: list[Candidate]) -> SearchRecord:
        opts = self.options
        started = time.perf_counter()
        interrupted = False
        self.teacher_runner()  # a runtime or precision the model cannot run on fails here, before any work
        untrained = {c.name: self.build(c, list(c.stages))[0] if not c.include else self.build(c, [])[0] for c in candidates}
        latency = self.latencies(list(untrained.values()))
        structural = [c for c in candidates if c.structural and not c.include]
        params = {c.name: count_params(untrained[c.name].module) for c in structural}
        kept, screened = screen(structural, latency, params, self.latency_spread)
        kept, paired = one_per_end_sibling(kept, latency)
        self.log += screened + paired
        candidates = [c for c in candidates if not (c.structural and not c.include) or c in kept]
        self.budget_split["screening_s"] += time.perf_counter() - started
        self.spent_s += self.budget_split["screening_s"]  # planning and screening are search work: the budget pays
        final: dict[str, Trial] = {}
        for c in candidates:
            if not c.structural or c.include:
                v = untrained[c.name]
                final[c.name] = Trial(c, 0, v, self.score(v), latency[c.name], cached=True)
        best = self._best_latency(final.values())
        contenders = sorted((c for c in candidates if c.structural and not c.include), key=lambda c: latency[c.name])
        rounds: dict[str, list[int]] = {}  # each candidate's recover steps, round by round
        finished: set[str] = set()  # candidates whose last round left them worse
        self.schedule = self.plan_schedule(contenders, latency, best)
        steps = self.schedule.first_steps
        with progress_bar(f"search (budget {self.budget_s:.0f} s)", int(math.ceil(self.budget_s)), opts.progress) as advance:
            try:
                while contenders:
                    round_trials = []
                    chunks: dict[str, int | str] = {}  # a head and its tails train the same steps
                    if self.pool.parallel:  # the round's heads train at once, on the pool's workers
                        self._train_ahead(contenders, rounds, steps, best, latency, chunks, advance)
                    for c in contenders:
                        done = rounds.get(c.name, [])
                        if latency[c.name] > best:
                            self.log.append({"candidate": c.name, "steps": steps, "skipped": "cannot beat the fastest within the bound"})
                            continue
                        family = c.family
                        if family not in chunks:
                            chunks[family] = self._round_steps(c, done, steps)
                        chunk = chunks[family]
                        if isinstance(chunk, str):
                            self.log.append({"candidate": c.name, "steps": steps, "skipped": chunk})
                            continue
                        stages = c.with_recover(done + [chunk], opts.recover)
                        ahead = self._trained_ahead(stages)  # its round's wall-clock time is charged already
                        variant, seconds, cached, trainer = self.build(c, stages)
                        rounds[c.name] = done + [chunk]
                        total = sum(rounds[c.name])
                        if not cached:
                            if not ahead:
                                self._charge(seconds, advance)
                            self.trained.append(f"{c.name}@{total}")
                            self.per_step_s = seconds / chunk  # the latest training's rate: the first also labelled the shared pool
                            self.family_step_s[family] = seconds / chunk
                        trial = Trial(c, total, variant, self.score(variant), latency[c.name], seconds, cached, trainer)
                        entry = {"candidate": c.name, "steps": chunk, "total_steps": total, "val_akd_px": trial.val_akd_px, "cached": cached}
                        earlier = final.get(c.name)
                        if earlier is not None and earlier.steps and earlier.val_akd_px <= trial.val_akd_px:
                            # a round restarts Adam and the schedule: a short one can leave it worse
                            rounds[c.name] = done
                            finished.add(c.name)  # its training has stopped paying
                            trial = earlier
                            entry["kept"] = f"the weights after {earlier.steps} steps (validation {earlier.val_akd_px:.3f} px)"
                        else:
                            self.curves.setdefault(c.name, []).append((total, trial.val_akd_px))
                        round_trials.append(trial)
                        final[c.name] = trial
                        self.log.append(entry)
                        if trial.val_akd_px <= opts.max_akd:
                            best = min(best, trial.latency_ms)
                    # heads trained ahead that no candidate took (one got within the bound first): cached, unused
                    self.trained += [self.heads[key][1] for key in self._fresh]
                    self._fresh.clear()
                    if not round_trials:
                        break
                    contenders = self._next_round(
                        [t for t in round_trials if t.candidate.name not in finished],
                        [t for t in final.values() if t.candidate.name not in finished],
                        best,
                    )
                    steps *= 2
            except KeyboardInterrupt:
                interrupted = True
            finally:
                self.pool.close()  # before the final timing: no worker runs beside it
                self.workers_info = self.pool.info()
                self.trained += [self.heads[key][1] for key in self._fresh]  # trained ahead when Ctrl-C came
                self._fresh.clear()
        if not interrupted:  # Ctrl-C asks for the results so far, not for more work
            self._mix(final)
        return self._measure(final, interrupted)

    def _mix(self, final: dict[str, Trial]) -> None:
        """The precision pass (:mod:`compressbench.search_precision`): each mix it finds for a
        candidate that int8 pushes out of the bound joins ``final`` as ``<name>+mixed``, the
        ``mixed`` stage appended to its parent's chain. Saved models (``include``) are taken as given."""
        opts = self.options
        if skip_reason(opts.runtime, opts.precision, opts.methods) is not None:
            return  # a default method the runtime cannot use: nothing to log in every torch search
        contenders = [
            Contender(t.candidate.name, t.variant.module, t.latency_ms)
            for t in final.values()
            if t.candidate.include is None and t.val_akd_px <= opts.max_akd and math.isfinite(t.latency_ms)
        ]
        frames = ValidationFrames(self.val_images, self.context.calibration_frames(CALIBRATION_FRAMES), opts.seed, opts.data)
        done = precision_pass(contenders, self.teacher, opts.runtime, opts.max_akd, frames, opts.threads, opts.progress)
        self.log += done.log
        self.budget_split["precision_s"] += done.seconds
        for found in done.found:
            parent = final[found.parent]
            options = found.stage["options"]
            variant = copy.copy(derive(parent.variant.module, ["mixed"], [options], self.context, provenance=parent.variant.provenance)[-1])
            variant.name = found.name
            candidate = Candidate(found.name, parent.candidate.stages + (_stage("mixed", **options),))
            final[found.name] = replace(parent, candidate=candidate, variant=variant)

    def _charge(self, seconds: float, advance) -> None:
        self.spent_s += seconds
        advance(int(seconds), spent_s=round(self.spent_s), left_s=round(max(self.budget_s - self.spent_s, 0)))

    def _trained_ahead(self, stages: list[dict]) -> bool:
        head, _ = _split_after_recover(stages)
        return bool(head) and self.cache.key(head) in self._fresh

    def _train_ahead(self, contenders, rounds, steps: int, best: float, latency, chunks: dict, advance) -> None:
        """A parallel pool's round: every head the round will ask for (of the contenders that could
        beat ``best``, one per family) that is neither in memory nor in the cache, trained at once on
        the pool's workers. Fills ``chunks`` with each family's steps as the round loop would (the
        budget left counting the round's earlier jobs at the per-step rate shared among the workers),
        and charges the round's wall-clock time, from the first job sent to the last result, to the
        budget. The loop then takes the heads from memory; a head whose candidate the loop skips
        after all (a faster one got within the bound this round) stays cached, unused."""
        opts = self.options
        jobs, heads, keys, planned_s = [], [], set(), 0.0
        for c in contenders:
            if latency[c.name] > best:
                continue
            done = rounds.get(c.name, [])
            if c.family not in chunks:
                chunks[c.family] = self._round_steps(c, done, steps, planned_s)
            chunk = chunks[c.family]
            if isinstance(chunk, str):
                continue
            head, _ = _split_after_recover(c.with_recover(done + [chunk], opts.recover))
            key = self.cache.key(head) if head else None
            if key is None or key in keys or self._ready_head(c, head) is not None:
                continue
            job, ends = self._job(c, head)
            jobs.append(job)
            heads.append(ends)
            keys.add(key)
            if self.per_step_s is not None:
                planned_s += chunk * self.per_step_s / self.pool.workers
        if not jobs:
            return
        started = time.perf_counter()
        try:
            for index, result in self.pool.run(jobs):
                self._keep(heads[index], jobs[index], result)
                self._fresh[self.cache.key(heads[index][-1])] = sum(result.seconds)
        finally:  # Ctrl-C too: what finished is cached, and the time it took is spent
            self._charge(time.perf_counter() - started, advance)

    def _round_steps(self, candidate: Candidate, done: list[int], steps: int, planned_s: float = 0.0) -> int | str:
        """This round's recover steps for the candidate (``steps``, fewer where ``max_steps`` or the
        budget left, less ``planned_s`` already planned this round, allow fewer), or why it does not
        train this round."""
        opts = self.options
        chunk = min(steps, opts.max_steps - sum(done))
        if chunk <= 0:
            return "reached --max-steps"
        if self.per_step_s is None or self._head_ready(candidate.with_recover(done + [chunk], opts.recover)):
            return chunk
        unit = opts.min_steps or STEP_UNIT
        affordable = int((self.budget_s - self.spent_s - planned_s) / self.per_step_s) // unit * unit
        if affordable >= chunk:
            return chunk
        return affordable if affordable >= unit else "budget"

    def _next_round(self, round_trials: list[Trial], trials, best: float) -> list[Candidate]:
        """Who trains next: of this round's candidates that could still beat (or are) the fastest
        variant within the bound and are not yet settled (validation AKD ``SETTLED_FRACTION`` of the
        bound), the fastest one whose learning curve says the budget left gets it there
        (:meth:`_affordable_bet`), else the better half of the heads by :func:`rank` (a head goes on
        with all its tails); when every one of them is settled (no training makes them
        faster), the better half of the faster candidates dropped earlier; when there are none, the
        fastest variant within the bound, for a wider margin. Candidates whose training stopped paying
        (a round left them worse) are not among the trials given."""
        settled = self.options.max_akd * SETTLED_FRACTION

        def with_tails(families: set[str], group: list[Trial]) -> list[Candidate]:
            # a head's tails train nothing of their own: they go on together, or a tail left behind would
            # later train the same head again from fewer steps
            return [t.candidate for t in rank(group) if t.candidate.family in families]

        def better_half(group: list[Trial]) -> list[Candidate]:
            ranked_families = list(dict.fromkeys(t.candidate.family for t in rank(group)))
            return with_tails(set(ranked_families[: max(1, len(ranked_families) // 2)]), group)

        open_now = [t for t in round_trials if t.val_akd_px > settled and t.latency_ms <= best]
        if open_now:
            halving = better_half(open_now)
            bet = self._affordable_bet(open_now) if len({t.candidate.family for t in open_now}) > 1 else None
            if bet is None:
                return halving
            chosen = with_tails({bet.candidate.family}, open_now)
            if chosen != halving:
                self.log[-1]["bet"] += f"; halving would have kept {', '.join(c.name for c in halving)}"
            return chosen
        dropped = [t for t in trials if t.steps and t.val_akd_px > settled and t.latency_ms <= best]
        if dropped:
            return better_half(dropped)
        within = [t for t in round_trials if t.val_akd_px <= self.options.max_akd]
        return with_tails({min(within, key=lambda t: t.latency_ms).candidate.family}, within) if within else []

    def _affordable_bet(self, trials: list[Trial]) -> Trial | None:
        """The fastest of ``trials`` whose extrapolated steps to the settled bound
        (:func:`~compressbench.search_schedule.steps_to_reach`), at its own seconds per step, fit in
        the budget left with ``BET_MARGIN`` to spare; None when none is predicted to (or none has a
        curve yet). Halving alone keeps whoever is closest now, usually a slower head."""
        target = self.options.max_akd * SETTLED_FRACTION
        left = self.budget_s - self.spent_s
        bets = []
        for t in trials:
            need = steps_to_reach(self.curves.get(t.candidate.name, []), target)
            step_s = self.family_step_s.get(t.candidate.family, self.per_step_s)
            if need is not None and step_s is not None and need * step_s * BET_MARGIN <= left:
                bets.append((t.latency_ms, need, need * step_s, t))
        if not bets:
            return None
        latency, need, cost_s, bet = min(bets, key=lambda b: b[0])
        self.log.append({"candidate": bet.candidate.name, "steps": need, "bet": (
            f"predicted at {target:.2f} px after {need} more steps ({cost_s:.0f} s of {left:.0f} s left), the fastest that fits")})
        return bet

    def plan_schedule(self, contenders: list[Candidate], latency: dict[str, float], best: float) -> Schedule:
        """The recovery schedule: ``--min-steps`` when given; otherwise set by the budget left
        (:func:`compressbench.search_schedule.budget_schedule`) from the cost per step of every head
        the first round will train, measured on its untrained skeleton (time charged to screening).
        With a cache, the schedule chosen by an earlier run of the same search is reused: measured
        costs vary a little between runs, and a resumed search must ask for the heads it cached."""
        opts = self.options
        if opts.min_steps is not None:
            return Schedule(opts.min_steps, "--min-steps")
        heads: dict[str, Candidate] = {}
        for c in contenders:
            if latency[c.name] <= best and c.family not in heads:
                heads[c.family] = c
        if not heads:
            return Schedule(min(MIN_FIRST_STEPS, opts.max_steps), "budget")
        recover = get_method("recover").resolve({**SEARCH_RECOVER_DEFAULTS, **opts.recover, "steps": 1})
        key = {"budget_s": self.budget_s, "heads": sorted(heads), "max_steps": opts.max_steps, "recover": recover, "workers": opts.workers}
        saved = self.cache.schedule(key)
        if saved is not None:
            self.log.append({"candidate": "schedule", "steps": saved.first_steps, "reused": "the schedule this cache's earlier run chose"})
            return saved
        started = time.perf_counter()
        settings = FinetuneSettings(
            batch=recover["batch"], loss=recover["loss"], pool=recover["pool"], augment=recover["augment"],
            augment_per=recover["augment_per"], refresh=recover["refresh"], channels_last=recover["channels_last"],
            precision=recover["precision"], size=opts.size, progress=False,
        )  # fmt: skip
        images = self.context.frames(recover["batch"])[: recover["batch"]].float()
        costs = []
        with progress_bar("timing a training step of each head", len(heads), opts.progress) as advance:
            for c in heads.values():
                costs.append(step_cost(self._skeleton(c), self.teacher, settings, images, recover["val_frames"]))
                advance(1)
        elapsed = time.perf_counter() - started
        self.budget_split["screening_s"] += elapsed
        self.spent_s += elapsed
        # parallel workers train a round's heads at once: per head, the round's wall time divides among them
        share = self.pool.workers if self.pool.parallel else 1
        step_s = [training_step_s(cost, settings) / share for cost in costs]
        schedule = budget_schedule(
            self.budget_s - self.spent_s, step_s, fixed_s=costs[0].pool_s,
            validation_s=sum(cost.validation_s for cost in costs) / len(costs) / share, max_steps=opts.max_steps,
        )  # fmt: skip
        self.cache.put_schedule(key, schedule)
        self.log.append({"candidate": "schedule", "steps": schedule.first_steps, "planned": (
            f"{len(heads)} heads at {min(step_s):.3f}-{max(step_s):.3f} s per step, rounds of {list(schedule.rounds)} heads, "
            f"{schedule.predicted_s:.0f} s predicted of {self.budget_s - self.spent_s:.0f} s left")})  # fmt: skip
        return schedule

    def _skeleton(self, candidate: Candidate) -> nn.Module:
        """The untrained module ``recover`` would train for ``candidate``: its structural stages applied."""
        head = list(candidate.stages[: candidate.head_end])
        return derive(self.teacher, [st["method"] for st in head], [st["options"] for st in head], self.context, provenance=self.start)[-1].module

    def _best_latency(self, trials) -> float:
        within = [t.latency_ms for t in trials if t.val_akd_px <= self.options.max_akd]
        return min(within) if within else math.inf

    def _measure(self, final: dict[str, Trial], interrupted: bool) -> SearchRecord:
        opts = self.options
        variants = [t.variant for t in final.values()]
        self.variants = {v.name: v for v in variants}
        timing_started = time.perf_counter()
        record = compare(
            self.teacher, variants, self.frames.evaluation(), threads=opts.threads, warmup=opts.warmup,
            repeats=opts.repeats, batch=opts.batch, show_progress=opts.progress, breakdown=False,
            runtime=opts.runtime, precision=opts.precision,
            calibration=self.context.calibration_frames(CALIBRATION_FRAMES) if opts.precision == "int8" else None,
        )  # fmt: skip
        rows = (record.rows[0], *(
            replace(row, recover_steps=final[row.variant].steps, recovered_by=final[row.variant].recovered_by or None,
                    val_akd_px=final[row.variant].val_akd_px)
            for row in record.rows[1:]
        ))  # fmt: skip
        measured = [row.to_json() for row in rows]
        front = pareto_front(measured[1:])
        chains = {}  # how to rebuild each front variant from the search's model (front_suite)
        for row in front:
            trial = final[row["variant"]]
            if trial.candidate.include is not None:
                chains[row["variant"]] = {"include": trial.candidate.include}
            else:
                own = trial.variant.provenance.stages[len(self.start.stages) :]
                chains[row["variant"]] = {"stages": [{"method": st.method, "options": dict(st.options)} for st in own]}
        winner = fastest_within(measured, opts.max_akd)
        runtime_fronts = self.fronts_elsewhere([r["variant"] for r in front])
        self.budget_split["training_s"] = self.spent_s - self.budget_split["screening_s"]
        self.budget_split["timing_s"] += time.perf_counter() - timing_started
        return SearchRecord(
            max_akd=opts.max_akd,
            runtime=opts.runtime,
            precision=opts.precision,
            budget_s=self.budget_s,
            spent_s=self.spent_s,
            interrupted=interrupted,
            seed=opts.seed,
            data=opts.data,
            trained=tuple(self.trained),
            log=tuple(self.log),
            front=tuple(r["variant"] for r in front),
            front_chains=chains,
            winner=winner["variant"] if winner else None,
            comparison=replace(record, rows=rows),
            budget_split=BudgetSplit(**self.budget_split),
            runtime_fronts=runtime_fronts,
            block_times=self.block_times,
            plans=dict(self.plans),
            schedule=self.schedule.to_json(),
        )


def check_include(path: str) -> None:
    """An ``include`` must be a saved keypoint model; refused (one line) before any training."""
    if not Path(path).is_file():
        raise CompressbenchError(f"--include {path} does not exist")
    try:
        module = load_model(path)
    except CompressbenchError as exc:
        raise CompressbenchError(f"--include {path} is not a compressbench model ({exc})") from None
    if not isinstance(getattr(module, "kp", None), nn.Module):
        raise CompressbenchError(f"--include {path} is not a keypoint detector")


def search(
    teacher: nn.Module, options: SearchOptions, start: Provenance | None = None, candidates: list[Candidate] | None = None
) -> tuple[SearchRecord, Variant | None]:
    """Run the search; returns ``(its record, the winning Variant or None)``. ``start`` is where
    ``teacher`` comes from (default: inferred from the module), so the winner can be saved and reloaded."""
    options = options.resolved()
    budget_s = options.validate()
    for path in options.include:
        check_include(path)
    planned = candidates is None  # an explicit candidate list is searched as given
    candidates = list(candidates) if candidates is not None else default_candidates(options.candidate_methods)
    candidates += [Candidate(Path(p).stem, (), include=str(p)) for p in options.include]
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise CompressbenchError(f"candidate names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
    if not candidates:
        raise CompressbenchError("no candidates: --methods allows none of the registered methods' chains")
    runner = _Search(teacher, options, start if start is not None else provenance_of(teacher), budget_s)
    if planned and "quantize" in options.methods and "quantize" not in options.candidate_methods:
        runner.log.append({"candidate": "+int8", "steps": 0, "skipped": (
            f"{options.runtime} {options.precision} quantizes the candidates itself; torch's int8 tails are not tried")})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        if planned:
            candidates += runner.planned()
        record = runner.run(candidates)
    return record, runner.variants.get(record.winner) if record.winner is not None else None


def front_suite(record: Mapping, model: dict, options: SearchOptions) -> str:
    """A suite file that rebuilds the Pareto front of ``record`` (a :class:`SearchRecord`, or one read as JSON) with ``bench`` (recover stages train
    again, with the same steps, options and seed), measured as the search measured it. ``model``:
    the search's model as suite keys (``model``, and ``checkpoint``/``config`` where given)."""
    measure = {
        "batch": options.batch, "warmup": options.warmup, "repeats": options.repeats, "frames": options.frames,
        "calib": CALIBRATION_FRAMES, "seed": options.seed, "input_size": options.size, "runtime": options.runtime,
        "precision": options.precision, "data": options.data,
    }  # fmt: skip
    if options.threads:
        measure["threads"] = options.threads
    specs = [VariantSpec(name="teacher", **model)]
    for name in record["front"]:
        chain = record["front_chains"][name]
        if "include" in chain:
            specs.append(VariantSpec(name=name, model=chain["include"]))
            continue
        stages = chain["stages"]
        specs.append(VariantSpec(
            name=name, **model, method=",".join(s["method"] for s in stages),
            set={str(i): dict(s["options"]) for i, s in enumerate(stages, start=1) if s["options"]},
        ))  # fmt: skip
    comment = (
        f"The Pareto front (latency against AKD) of a compressbench search within {record['max_akd']:g} px "
        f"(fastest within the bound: {record['winner'] or 'none'}).\n"
        "Rebuild and measure it: compressbench bench THIS_FILE -o front.json"
    )
    return suite_text(measure, specs, comment)


def save_winner(record: SearchRecord, winner: Variant, path: str | Path) -> SearchRecord:
    """Save the winning variant (and its sidecar with its measured row), loadable everywhere; returns
    the record naming the file (``out``: a new record)."""
    save_compressed(winner, path, record.comparison, record.comparison.row(winner.name))
    return replace(record, out=str(path))


__all__ = ["Candidate", "SearchOptions", "default_candidates", "front_suite", "parse_budget", "pareto_front", "save_winner", "search"]
