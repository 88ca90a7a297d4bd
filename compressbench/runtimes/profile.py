"""``profile()``: seed 000's tables for any model, measured honestly on this machine.

It sits on top of the runtimes (it runs the model on one, and maps the runtime's per-op profile to
the blog's modules) and uses the measurement below them (:mod:`compressbench.profiling`)."""

from __future__ import annotations

import statistics
from typing import Sequence

from torch import nn

from compressbench.models import check_input_size
from compressbench.profiling.counting import (
    count_params,
    example_input,
    explain_mac_difference,
    macs_fvcore,
    macs_thop,
    size_mb,
    try_count,
)
from compressbench.profiling.efficiency import group_by_kind, layer_efficiency, traffic, why_not_faster
from compressbench.profiling.environment import environment
from compressbench.profiling.health import check_health, layer_health
from compressbench.profiling.layout import MODULE_GROUPS, layout_for
from compressbench.profiling.module_timer import ModuleTimer, capture_shapes
from compressbench.profiling.timing import LatencyStats, measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.records import ProfileRecord
from compressbench.runtimes.attribution import attribute, has_op_timer, op_timer
from compressbench.runtimes.base import openmp_wait_policy, parse_runtime
from compressbench.runtimes.deployed import runtime_for
from compressbench.runtimes.registry import check_runtime, prepare


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _module_row(group: str, samples: list[float], e2e_ms: float) -> dict:
    s = LatencyStats.from_samples(samples)
    return {"name": group, "latency_ms": s.median, "p10": s.p10, "p90": s.p90, "share": s.median / e2e_ms}


def _runtime_rows(attributed: dict, e2e_ms: float) -> tuple[list, list]:
    """Per-(block, op) and per-module-group rows from a runtime's per-op times (each call's sum per
    row, then the median over calls); ops no scope maps to are the ``other`` row, never dropped."""
    calls = len(attributed["groups"])
    layer_keys = sorted({key for call in attributed["layers"] for key in call})
    layer_rows = [
        {"block": block, "op": op, "module": f"{block}/{op}",
         "latency_ms": _median([call.get((block, op), 0.0) for call in attributed["layers"]])}
        for block, op in layer_keys
    ]  # fmt: skip
    seen = {g for call in attributed["groups"] for g in call}
    groups = [g for g in MODULE_GROUPS if g in seen] + sorted(seen - set(MODULE_GROUPS))
    module_rows = [_module_row(g, [call.get(g, 0.0) for call in attributed["groups"]], e2e_ms) for g in groups]
    return layer_rows if calls else [], module_rows


def _block_row(label: str, module_name: str, members: list[str], modules: dict, shapes: dict, fv, th) -> dict:
    """One row of the blocks table. A block whose container never runs by itself (an FX graph calls
    its leaves directly) or does not exist (names flattened by a graph) is described by its leaves:
    input of the first to run, output of the last, their parameters and MACs summed."""
    ran = [n for n in shapes if n in members]  # capture order is execution order
    if module_name in shapes:
        shape_in, shape_out = shapes[module_name]
    elif ran:
        shape_in, shape_out = shapes[ran[0]][0], shapes[ran[-1]][1]
    else:
        shape_in, shape_out = (), ()

    def macs(counted):
        if not counted:
            return None
        if module_name in counted.by_module:
            return counted.by_module[module_name]
        return sum(counted.by_module.get(n, 0) for n in members)

    module = modules.get(module_name)
    return {
        "name": label,
        "module": module_name,
        "input_shape": list(shape_in),
        "output_shape": list(shape_out),
        "params": count_params(module) if module is not None else sum(count_params(modules[n]) for n in members),
        "macs": macs(fv),
        "macs_thop": macs(th),
    }


def profile(
    model: nn.Module,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    *,
    name: str = "model",
    warmup: int = 10,
    repeats: int = 50,
    threads: int | None = None,
    seed: int = 0,
    depth: int = 2,
    show_progress: bool = True,
    peaks=None,
    runtime: str = "torch",
    precision: str = "fp32",
) -> ProfileRecord:
    """Profile ``model`` on a seeded input of ``input_shape``; returns the typed record
    (``.to_json()`` is what ``compressbench profile --format json`` writes).

    Timing interleaves clean forwards (the end-to-end latency) with instrumented forwards (the
    per-module and per-layer times, taken in place by hooks), so both see the same machine state;
    the instrumented forward's own end-to-end time gives the instrumentation's overhead. On
    ``runtime="torch"`` the instrumented forward is eager with module hooks (bf16: under autocast;
    int8: the FX-quantized model, which is then the model profiled). On ``onnxruntime`` /
    ``openvino`` the clean forward is the runtime's runner and the instrumented one a profiling copy
    of it, whose per-op times are mapped onto the same module groups and blocks
    (:mod:`compressbench.runtimes.attribution`).

    Every layer carries MACs, bytes moved, achieved GMAC/s and arithmetic intensity; with ``peaks``
    (:func:`compressbench.profiling.peaks.machine_peaks`) also % of peak and compute/memory bound.
    The record's ``health`` says what may make the timings lie (load, a time floor, CPU scaling).
    """
    if len(input_shape) != 4 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"input_shape must be 4 positive sizes (B, C, H, W), got {tuple(input_shape)}")
    if repeats <= 0 or warmup < 0:
        raise ValueError("repeats must be positive and warmup non-negative")
    runtime, precision = parse_runtime(runtime, precision)
    runtime = runtime_for(model, runtime)
    check_runtime(runtime, precision)
    model = model.eval()
    if int(input_shape[-1]) == int(input_shape[-2]):
        check_input_size(model, int(input_shape[-1]))
    example = example_input(input_shape, seed)

    with torch_threads(threads) as threads_used:
        health = check_health(threads_used)
        prepared = prepare(runtime, model, example, threads_used, precision)
        if runtime == "torch":
            model = prepared.module  # what runs: the FX-quantized model for int8
        layout = layout_for(model)
        modules = dict(model.named_modules())
        leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
        shapes = capture_shapes(model, example)
        moved = traffic(model, example, leaves)
        fv, fv_error = try_count(macs_fvcore, model, example)
        th, th_error = try_count(macs_thop, model, example)
        per_module: dict[str, list[float]] = {n: [] for n in modules}
        if runtime == "torch":
            timer = ModuleTimer(model)

            def instrumented():
                with timer:
                    times = timer.run(prepared)
                for n, ms in times.items():
                    per_module[n].append(ms)
        else:
            instrumented = op_timer(prepared) if has_op_timer(prepared) else None
        timed = {"clean": prepared, **({"instrumented": instrumented} if instrumented is not None else {})}

        with progress_bar(f"profiling {name} on {runtime} {precision}", repeats, show_progress) as advance:
            stats = measure_interleaved(timed, warmup, repeats, on_round=lambda _: advance())
        for values in per_module.values():  # drop the warm-up rounds
            del values[: len(values) - repeats]

    end_to_end = stats["clean"]
    e2e_ms = end_to_end.median
    layer_rows = []
    for leaf in leaves if runtime == "torch" else ():
        if per_module[leaf]:
            block, op = layout.layer_label(leaf, modules[leaf])
            ms = _median(per_module[leaf])
            t = moved.get(leaf, {})
            bytes_moved = t.get("input_bytes", 0) + t.get("output_bytes", 0) + t.get("weight_bytes", 0)
            macs = fv.by_module.get(leaf, 0) if fv else t.get("macs")  # fvcore cannot trace int8 kernels
            layer_rows.append({"block": block, "op": op, "module": leaf, "latency_ms": ms, "kind": t.get("kind", type(modules[leaf]).__name__.lower()),
                               **layer_efficiency(macs, ms, bytes_moved, t.get("precision", "fp32"), peaks)})  # fmt: skip
    health = health.merged(layer_health(layer_rows))
    module_rows = []
    if runtime == "torch":
        for group, members in layout.module_groups.items():
            samples = [sum(per_module[m][i] for m in members) for i in range(repeats) if all(per_module[m] for m in members)]
            if samples:
                module_rows.append(_module_row(group, samples, e2e_ms))
    elif instrumented is not None:
        layer_rows, module_rows = _runtime_rows(attribute(instrumented.calls(repeats)), e2e_ms)
    attribution = {"end_to_end_ms": e2e_ms}
    if instrumented is not None:
        layers_sum = sum(row["latency_ms"] for row in layer_rows)
        modules_sum = sum(row["latency_ms"] for row in module_rows)
        attribution.update(
            layers_sum_ms=layers_sum,
            modules_sum_ms=modules_sum,
            gap_pct=_pct(layers_sum - e2e_ms, e2e_ms),
            modules_gap_pct=_pct(modules_sum - e2e_ms, e2e_ms),
            instrumented_ms=stats["instrumented"].median,
            overhead_pct=_pct(stats["instrumented"].median - e2e_ms, e2e_ms),
        )
    else:  # a runtime without a per-op profiler here: end-to-end only
        attribution["unavailable"] = f"per-op attribution is not available for {runtime} in this build"
    block_rows = [_block_row(label, module_name, layout.block_members(label, leaves), modules, shapes, fv, th)
                  for label, module_name in layout.blocks]
    tree_rows = [
        {
            "name": n,
            "type": type(m).__name__,
            "depth": n.count(".") + 1,
            "params": count_params(m),
            "macs": fv.by_module.get(n, 0) if fv else None,
            "latency_ms": _median(per_module[n]) if per_module[n] else None,
            "share": _median(per_module[n]) / e2e_ms if per_module[n] else None,
        }
        for n, m in modules.items()
        if n and n.count(".") < depth
    ]
    env = environment(threads_used)
    return ProfileRecord(
        model=name,
        params=count_params(model),
        macs_fvcore=fv.total if fv else None,
        macs_thop=th.total if th else None,
        macs_notes=explain_mac_difference(model, fv, th) if fv and th else [e for e in (fv_error, th_error) if e],
        size_mb=size_mb(model),
        latency_ms=end_to_end.summary(),
        batch=int(input_shape[0]),
        input_size=int(input_shape[-1]),
        input_shape=[int(d) for d in input_shape],
        threads=threads_used,
        warmup=warmup,
        seed=seed,
        modules=module_rows,
        blocks=block_rows,
        layers=layer_rows,
        tree=tree_rows,
        attribution=attribution,
        hourglass_layout=layout.hourglass,
        efficiency={
            "peaks": peaks.to_dict() if peaks is not None else None,
            "by_kind": group_by_kind(layer_rows),
            "why_not_faster": why_not_faster(layer_rows),
            "macs_source": "fvcore" if fv else "layer shapes (convolutions and linear layers only; fvcore could not trace this model)",
        },
        health=health.to_dict(),
        runtime=prepared.record.to_dict(),
        env={**env, "runtime": runtime, "runtime_version": prepared.record.version, "precision": precision,
             "precision_used": prepared.record.precision_used, "omp_wait_policy": openmp_wait_policy()},
    )
