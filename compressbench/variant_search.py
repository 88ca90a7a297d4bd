"""``search``: the fastest variant of a model that still agrees with it within an AKD bound.

Candidates are chains of registered methods (prune ratios and importances, exact, quantize,
convolution swaps) plus saved models given with ``include``. Every structural candidate gets
``recover`` stages after its structural stages. The training budget goes where it pays, by
successive halving: every candidate that could still beat the fastest variant known to be within the
bound is recovered for a few steps, the better half by validation AKD is recovered for twice the
steps *more*, continuing from its own weights (each round is one more ``recover`` stage, with its own
cosine schedule trained to its end, so a variant's chain records every round it was trained for), and so on. Candidates
that differ only after ``recover`` (a pruned head and its ``+exact``/``+int8`` tails, which are
train-free) share one recovery. A candidate whose latency cannot beat that fastest variant is not
trained at all (``recover`` changes weights, not structure, so its latency is known before
training). A round that leaves a candidate worse on validation is undone (it keeps its earlier weights,
trains no further and takes no place in later rounds). Once the survivors are settled (validation AKD 5% inside the bound: the held-out frames
that decide differ) they cannot get faster by training, so the budget goes back to the faster
candidates that halving had dropped, continuing from their last weights; when there are none, the
fastest variant within the bound goes on training (a wider margin on frames it was not selected
on). The survivors are measured interleaved with the teacher in one
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
import functools
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from compressbench.comparison import compare
from compressbench.comparison.fidelity import collect_outputs, fidelity
from compressbench.comparison.saving import save_compressed
from compressbench.compression import METHODS, CompressionContext, get_method
from compressbench.compression.recover import resolved_schedule
from compressbench.data.holdout import FrameSource
from compressbench.errors import CompressbenchError
from compressbench.metrics import fastest_within
from compressbench.profiling.timing import measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.provenance import (
    Provenance,
    Variant,
    derive,
    load_model,
    provenance_of,
    read_model_file,
    save_variant,
)
from compressbench.report.output import check_writable
from compressbench.report.pareto import pareto_front as front_names
from compressbench.runtimes import RuntimeUnavailable, check_runtime, prepare
from compressbench.suite import VariantSpec, suite_text

DEFAULT_METHODS = ("prune", "exact", "quantize", "asym", "recover")
PRUNE_RATIOS = (0.3, 0.5, 0.7)
PRUNE_IMPORTANCES = ("l2",)
ASYM_RANK_RATIOS = (0.5,)
DSCONV_MULTIPLIERS = (1,)
CALIBRATION_FRAMES = 64  # int8 runtimes calibrate on these (never on the evaluation frames)
LATENCY_ROUNDS = (2, 8)  # warm-up and timed interleaved rounds of the latency probe before training
SETTLED_FRACTION = 0.95  # a candidate stops training once its validation AKD is this far inside the bound:
# it was selected on its validation frames, and the held-out frames that decide usually differ by a few percent
CACHE_VERSION = 2  # 2: only the trained head (structural stages + recovers) is cached
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


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
    def family(self) -> str:
        """The stages recover trains (up to the last structural one): a head and its tails share it."""
        last = max((i for i, s in enumerate(self.stages) if get_method(s["method"]).structural), default=-1)
        return json.dumps(self.stages[: last + 1], sort_keys=True, default=str)

    def with_recover(self, rounds: list[int], recover: dict) -> list[dict]:
        """The stages with one ``recover`` per training round (``rounds``: each round's steps, every
        round continuing from the last) after the last structural stage. Rounds after the first run
        at ``CONTINUE_LR_FRACTION`` of the lr with a warm-up, so they go on from the weights they
        were given instead of jolting them."""
        stages = [dict(s) for s in self.stages]
        last = max(i for i, s in enumerate(stages) if get_method(s["method"]).structural)
        method = get_method("recover")
        given = method.resolve({**SEARCH_RECOVER_DEFAULTS, **recover, "steps": rounds[0]})
        # the first round's lr is written out, because the continuation rounds' lr is a fraction of it
        given["lr"] = resolved_schedule(given)["lr"]
        recovers = [{"method": "recover", "options": given}] + [
            {"method": "recover", "options": method.resolve({**given, "steps": n, "lr": given["lr"] * CONTINUE_LR_FRACTION,
                                                              "warmup": int(n * CONTINUE_WARMUP_FRACTION)})}
            for n in rounds[1:]
        ]  # fmt: skip
        return stages[: last + 1] + recovers + stages[last + 1 :]


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
    min_steps: int = 100  # the first round's recover steps
    max_steps: int = 6400  # no candidate trains more steps than this over all its rounds
    recover: dict = field(default_factory=dict)  # recover options other than steps (pool, lr, ...)
    val_frames: int = 64
    threads: int | None = None
    warmup: int = 5
    repeats: int = 20
    batch: int = 1
    runtime: str = "torch"  # where candidates are timed: the fastest variant depends on it
    precision: str = "fp32"
    cache: Path | None = None
    progress: bool = True

    def validate(self) -> float:
        """Reject bad input before any work; returns the budget in seconds."""
        if not (isinstance(self.max_akd, (int, float)) and self.max_akd > 0):
            raise CompressbenchError(f"--max-akd must be a positive number of pixels, got {self.max_akd}")
        seconds = parse_budget(self.budget)
        check_runtime(self.runtime, self.precision)  # unknown or not installed: one line, before any work
        for name in ("frames", "size", "min_steps", "max_steps", "val_frames", "repeats", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise CompressbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise CompressbenchError(f"--warmup must be zero or more, got {self.warmup!r}")
        if self.max_steps < self.min_steps:
            raise CompressbenchError(f"--max-steps {self.max_steps} is below --min-steps {self.min_steps}")
        for name in self.methods:
            if name not in METHODS.names():
                raise CompressbenchError(
                    f"unknown compression method {name!r} in the candidates; known: {', '.join(METHODS.names())}"
                )
        if "steps" in self.recover:
            raise CompressbenchError("recover.steps is what the search decides; bound it with --min-steps and --max-steps")
        resolved = get_method("recover").resolve(self.recover)
        if resolved["warmup"] > self.min_steps:
            raise CompressbenchError(
                f"recover.warmup {resolved['warmup']} is longer than the first round (--min-steps {self.min_steps})"
            )
        if self.data != "synthetic" and not Path(self.data).exists():
            raise CompressbenchError(f"--data {self.data} does not exist; give 'synthetic', a folder of images or a video file")
        return seconds


def _stage(method: str, **options) -> dict:
    return {"method": method, "options": get_method(method).resolve(options)}


def default_candidates(methods: tuple[str, ...]) -> list[Candidate]:
    """The grid the registered methods suggest, limited to ``methods``: each structural variant (prune
    ratios and importances, asym ranks, dsconv multipliers) alone, folded (exact) and in int8, and the
    exact/quantize chains of the unchanged model."""
    allowed = set(methods)
    tails: list[tuple[str, list[dict]]] = [("", [])]
    if "exact" in allowed:
        tails.append(("+exact", [_stage("exact")]))
    if "quantize" in allowed:
        tails.append(("+int8", [_stage("quantize")]))
        if "exact" in allowed:
            tails.append(("+exact+int8", [_stage("exact"), _stage("quantize")]))
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
    """The rows of :func:`compressbench.report.pareto.pareto_front` (no other row at least as fast
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
        # every candidate's recover and quantize stages ask for the same frames: make them once
        made = functools.lru_cache(maxsize=4)(self.frames.calibration)

        def calibration(count: int) -> torch.Tensor:
            return made(count).clone()  # a stage may change what it is given; the cached copy stays

        self.context = CompressionContext(
            calibration_frames=calibration, input_shape=(1, 3, options.size, options.size),
            seed=options.seed, show_progress=False, teacher=self.teacher,
        )  # fmt: skip
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
        self.per_step_s: float | None = None  # seconds per recover step, from the latest training
        self._teacher_runner: Callable | None = None

    # --- building and scoring -------------------------------------------------------------------
    def build(self, candidate: Candidate, stages: list[dict]) -> tuple[Variant, float, bool, str]:
        """The candidate's variant, the training seconds it cost, whether its training was reused, and
        which "candidate@steps" trained its head ("" without recover).

        Only the stages up to ``recover`` are trained and cached: candidates that share them (a head
        and its ``+exact``/``+int8`` tails) share one recovery, and the train-free tail is applied on
        top of it."""
        if candidate.include is not None:
            module = load_model(candidate.include).eval()
            return Variant(candidate.name, module, provenance_of(candidate.include, module)), 0.0, True, ""
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
        or trained now. A head whose last recover continues an earlier round trains only that round,
        on top of the earlier head (itself from memory, the cache, or trained first)."""
        key = self.cache.key(head)
        steps = sum(s["options"]["steps"] for s in head if s["method"] == "recover")
        if key in self.heads:
            return self.heads[key], 0.0, True
        hit = self.cache.get(head)
        if hit is not None:
            module, provenance, info = hit
            self.heads[key] = (Variant(candidate.name, module.eval(), provenance), info.get("trained_by", f"{candidate.name}@{steps}"))
            return self.heads[key], 0.0, True
        earlier, seconds = head[:-1], 0.0
        if earlier and earlier[-1]["method"] == "recover":
            (base, _), seconds, _ = self._recovered(candidate, earlier)
            module, provenance, todo = base.module, base.provenance, head[-1:]
        else:
            module, provenance, todo = self.teacher, self.start, head
        started = time.perf_counter()
        variant = derive(module, [s["method"] for s in todo], [s["options"] for s in todo], self.context, provenance=provenance)[-1]
        seconds += time.perf_counter() - started
        self.cache.put(head, variant, {"seconds": seconds, "trained_by": f"{candidate.name}@{steps}"})
        self.heads[key] = (variant, f"{candidate.name}@{steps}")
        return self.heads[key], seconds, False

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
            for name, module in [(v.name, v.module.eval()) for v in variants]:
                try:
                    fns[name] = prepare(opts.runtime, module, self.timed, threads, opts.precision, calibration)
                except RuntimeUnavailable:
                    continue
            with torch.inference_mode():
                stats = measure_interleaved(fns, *LATENCY_ROUNDS)
        return {name: stats[name].median if name in stats else math.inf for name in ["__teacher__", *(v.name for v in variants)]}

    # --- the search -----------------------------------------------------------------------------
    def run(self, candidates: list[Candidate]) -> dict:
        opts = self.options
        interrupted = False
        self.teacher_runner()  # a runtime or precision the model cannot run on fails here, before any work
        untrained = {c.name: self.build(c, list(c.stages))[0] if not c.include else self.build(c, [])[0] for c in candidates}
        latency = self.latencies(list(untrained.values()))
        final: dict[str, Trial] = {}
        for c in candidates:
            if not c.structural or c.include:
                v = untrained[c.name]
                final[c.name] = Trial(c, 0, v, self.score(v), latency[c.name], cached=True)
        best = self._best_latency(final.values())
        contenders = sorted((c for c in candidates if c.structural and not c.include), key=lambda c: latency[c.name])
        rounds: dict[str, list[int]] = {}  # each candidate's recover steps, round by round
        finished: set[str] = set()  # candidates whose last round left them worse
        steps = opts.min_steps
        with progress_bar(f"search (budget {self.budget_s:.0f} s)", int(math.ceil(self.budget_s)), opts.progress) as advance:
            try:
                while contenders:
                    round_trials = []
                    chunks: dict[str, int | str] = {}  # a head and its tails train the same steps
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
                        variant, seconds, cached, trainer = self.build(c, c.with_recover(done + [chunk], opts.recover))
                        rounds[c.name] = done + [chunk]
                        total = sum(rounds[c.name])
                        if not cached:
                            self.spent_s += seconds
                            advance(int(seconds), spent_s=round(self.spent_s), left_s=round(max(self.budget_s - self.spent_s, 0)))
                            self.trained.append(f"{c.name}@{total}")
                            self.per_step_s = seconds / chunk  # the latest training's rate: the first also labelled the shared pool
                        trial = Trial(c, total, variant, self.score(variant), latency[c.name], seconds, cached, trainer)
                        entry = {"candidate": c.name, "steps": chunk, "total_steps": total, "val_akd_px": trial.val_akd_px, "cached": cached}
                        earlier = final.get(c.name)
                        if earlier is not None and earlier.steps and earlier.val_akd_px <= trial.val_akd_px:
                            # a round restarts Adam and the schedule: a short one can leave it worse
                            rounds[c.name] = done
                            finished.add(c.name)  # its training has stopped paying
                            trial = earlier
                            entry["kept"] = f"the weights after {earlier.steps} steps (validation {earlier.val_akd_px:.3f} px)"
                        round_trials.append(trial)
                        final[c.name] = trial
                        self.log.append(entry)
                        if trial.val_akd_px <= opts.max_akd:
                            best = min(best, trial.latency_ms)
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
        return self._measure(final, interrupted)

    def _round_steps(self, candidate: Candidate, done: list[int], steps: int) -> int | str:
        """This round's recover steps for the candidate (``steps``, fewer where ``max_steps`` or the
        budget left allow fewer), or why it does not train this round."""
        opts = self.options
        chunk = min(steps, opts.max_steps - sum(done))
        if chunk <= 0:
            return "reached --max-steps"
        if self.per_step_s is None or self._head_ready(candidate.with_recover(done + [chunk], opts.recover)):
            return chunk
        affordable = int((self.budget_s - self.spent_s) / self.per_step_s) // opts.min_steps * opts.min_steps
        if affordable >= chunk:
            return chunk
        return affordable if affordable >= opts.min_steps else "budget"

    def _next_round(self, round_trials: list[Trial], trials, best: float) -> list[Candidate]:
        """Who trains next: the better half (by :func:`rank`) of this round's candidates that could
        still beat (or are) the fastest variant within the bound and are not yet settled (validation AKD
        ``SETTLED_FRACTION`` of the bound); when every one of them is settled (no training makes them
        faster), the better half of the faster candidates dropped earlier; when there are none, the
        fastest variant within the bound, for a wider margin. Candidates whose training stopped paying
        (a round left them worse) are not among the trials given."""
        settled = self.options.max_akd * SETTLED_FRACTION

        def better_half(group: list[Trial]) -> list[Candidate]:
            return [t.candidate for t in rank(group)[: max(1, len(group) // 2)]]

        open_now = [t for t in round_trials if t.val_akd_px > settled and t.latency_ms <= best]
        if open_now:
            return better_half(open_now)
        dropped = [t for t in trials if t.steps and t.val_akd_px > settled and t.latency_ms <= best]
        if dropped:
            return better_half(dropped)
        within = [t for t in round_trials if t.val_akd_px <= self.options.max_akd]
        return [min(within, key=lambda t: t.latency_ms).candidate] if within else []

    def _best_latency(self, trials) -> float:
        within = [t.latency_ms for t in trials if t.val_akd_px <= self.options.max_akd]
        return min(within) if within else math.inf

    def _measure(self, final: dict[str, Trial], interrupted: bool) -> dict:
        opts = self.options
        variants = [t.variant for t in final.values()]
        self.variants = {v.name: v for v in variants}
        record = compare(
            self.teacher, variants, self.frames.evaluation(), threads=opts.threads, warmup=opts.warmup,
            repeats=opts.repeats, batch=opts.batch, show_progress=opts.progress, breakdown=False,
            runtime=opts.runtime, precision=opts.precision,
            calibration=self.context.calibration_frames(CALIBRATION_FRAMES) if opts.precision == "int8" else None,
        )  # fmt: skip
        rows = record["rows"]
        for row in rows[1:]:
            trial = final[row["variant"]]
            row["recover_steps"] = trial.steps
            if trial.recovered_by:
                row["recovered_by"] = trial.recovered_by
            row["val_akd_px"] = trial.val_akd_px
        front = pareto_front(rows[1:])
        chains = {}  # how to rebuild each front variant from the search's model (front_suite)
        for row in front:
            trial = final[row["variant"]]
            if trial.candidate.include is not None:
                chains[row["variant"]] = {"include": trial.candidate.include}
            else:
                own = trial.variant.provenance.stages[len(self.start.stages) :]
                chains[row["variant"]] = {"stages": [{"method": st.method, "options": dict(st.options)} for st in own]}
        winner = fastest_within(rows, opts.max_akd)
        return {
            "max_akd": opts.max_akd,
            "runtime": opts.runtime,
            "precision": opts.precision,
            "budget_s": self.budget_s,
            "spent_s": self.spent_s,
            "interrupted": interrupted,
            "seed": opts.seed,
            "data": opts.data,
            "trained": list(self.trained),
            "log": self.log,
            "front": [r["variant"] for r in front],
            "front_chains": chains,
            "winner": winner["variant"] if winner else None,
            **record,
        }


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
) -> tuple[dict, Variant | None]:
    """Run the search; returns ``(results record, the winning Variant or None)``. ``start`` is where
    ``teacher`` comes from (default: inferred from the module), so the winner can be saved and reloaded."""
    budget_s = options.validate()
    for path in options.include:
        check_include(path)
    candidates = list(candidates) if candidates is not None else default_candidates(tuple(options.methods))
    candidates += [Candidate(Path(p).stem, (), include=str(p)) for p in options.include]
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise CompressbenchError(f"candidate names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
    if not candidates:
        raise CompressbenchError("no candidates: --methods allows none of the registered methods' chains")
    runner = _Search(teacher, options, start if start is not None else provenance_of(teacher), budget_s)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        record = runner.run(candidates)
    return record, runner.variants.get(record["winner"]) if record["winner"] is not None else None


def front_suite(record: dict, model: dict, options: SearchOptions) -> str:
    """A suite file that rebuilds the record's Pareto front with ``bench`` (recover stages train
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


def save_winner(record: dict, winner: Variant, path: str | Path) -> Path:
    """Save the winning variant (and its sidecar with its measured row), loadable everywhere; the
    record names the file (``out``)."""
    row = next(r for r in record["rows"] if r["variant"] == winner.name)
    save_compressed(winner, path, record, row)
    record["out"] = str(path)
    return Path(path)


__all__ = ["Candidate", "SearchOptions", "default_candidates", "front_suite", "parse_budget", "pareto_front", "save_winner", "search"]
