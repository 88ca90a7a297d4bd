"""``run_suite``: build every variant of a suite and measure them all in one process."""

from __future__ import annotations

from dataclasses import asdict, replace

from compressbench.comparison import compare
from compressbench.comparison.hints import annotate_variants, model_arguments
from compressbench.errors import CompressbenchError
from compressbench.evaluation import predict
from compressbench.profiling import machine_peaks
from compressbench.records import RESULTS_FORMAT, ResultsRecord
from compressbench.runtimes import check_runtime
from compressbench.runtimes.profile import profile
from compressbench.suite import Suite, build_variant, frame_source

FORMAT = RESULTS_FORMAT
OVERLAY_FRAMES = 4
PROFILE_KEYS = (
    "latency_ms", "modules", "blocks", "layers", "attribution", "params", "macs_fvcore", "hourglass_layout",
    "efficiency", "health",
)  # fmt: skip


def run_suite(suite: Suite, use_cache: bool = True, show_progress: bool = True, profiles: bool = True) -> ResultsRecord:
    """The results record (:class:`~compressbench.records.ResultsRecord`): the comparison table of every variant (the first one is the reference,
    usually the teacher), each variant's per-module/per-layer profile, and keypoints for overlays."""
    m = suite.measure
    try:
        check_runtime(m["runtime"], m["precision"])
    except CompressbenchError as exc:
        raise CompressbenchError(f"suite {suite.path}: {exc}") from None
    cache_hits: list[str] = []
    variants = [build_variant(spec, m, use_cache, show_progress, cache_hits) for spec in suite.variants]
    reference, others = variants[0], variants[1:]
    eval_frames = frame_source(m).evaluation()
    measured = compare(
        reference.module, others, eval_frames, threads=m["threads"], warmup=m["warmup"], repeats=m["repeats"],
        runtime=m["runtime"], precision=m["precision"], batch=m["batch"], show_progress=show_progress, teacher_name=reference.name,
    )
    # optional variants this machine cannot run are named with the reason, where the table is read
    skipped = replace(measured, notes=(*measured.notes, *(f"skipped {name}: {why}" for name, why in suite.skipped.items())))
    # rows above the AKD bound name the command that would fine-tune them back; recover rows their curve
    specs = {spec.name: spec for spec in suite.variants}
    record = annotate_variants(
        skipped,
        {v.name: [{"method": s.method, "options": s.options, "report": s.report} for s in v.stages] for v in variants},
        {name: model_arguments(spec.model, config=spec.config, checkpoint=spec.checkpoint) for name, spec in specs.items()},
        data=m["data"], seed=m["seed"],
    )  # fmt: skip
    shape = (m["batch"], 3, m["input_size"], m["input_size"])
    per_variant = {}
    if profiles:
        peaks = machine_peaks(m["threads"])  # cached per machine: measured once, a second or two
        for variant in variants:
            full = profile(variant.module, shape, name=variant.name, warmup=m["warmup"], repeats=max(5, m["repeats"] // 2),
                           threads=m["threads"], seed=m["seed"], show_progress=show_progress, peaks=peaks)
            written = full.to_json()
            per_variant[variant.name] = {key: written[key] for key in PROFILE_KEYS}
    shown = eval_frames.slice(0, OVERLAY_FRAMES)
    points = {v.name: predict(v.module, shown)["value"].tolist() for v in variants}
    return ResultsRecord(
        suite=str(suite.path),
        measure=dict(m),
        specs=tuple(asdict(spec) for spec in suite.variants),
        skipped=dict(suite.skipped),
        stages={v.name: [{"method": s.method, "options": s.options, "report": s.report} for s in v.stages] for v in variants},
        comparison=record,
        profiles=per_variant,
        overlays={"data": m["data"], "split": "test", "seed": m["seed"], "size": m["input_size"], "count": len(shown), "points": points},
        env=record.env,
        cached=tuple(cache_hits),  # variants loaded from the cache rather than built
    )
