"""``profile()``: seed 000's tables for any model, measured honestly on this machine."""

from __future__ import annotations

import statistics
from typing import Sequence

import torch
from torch import nn

from compressbench.profiling.counting import (
    count_params,
    explain_mac_difference,
    macs_fvcore,
    macs_thop,
    weight_size_mb,
)
from compressbench.profiling.environment import environment
from compressbench.profiling.layout import MODULE_GROUPS, layout_for
from compressbench.profiling.module_timer import ModuleTimer, capture_shapes
from compressbench.profiling.timing import LatencyStats, measure_interleaved, torch_threads
from compressbench.progress import progress_bar
from compressbench.runtimes import check_runtime, parse_runtime, prepare
from compressbench.runtimes.attribution import attribute, has_op_timer, op_timer
from compressbench.runtimes.base import openmp_wait_policy


def example_input(input_shape: Sequence[int], seed: int) -> torch.Tensor:
    """A seeded frame batch with pixel values in [0, 1], like FOMM's inputs."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*input_shape, generator=generator)


def _count_or_none(counter, model: nn.Module, example: torch.Tensor):
    """A MAC count, or (None, reason) where the counter cannot trace the model (e.g. int8 kernels)."""
    try:
        return counter(model, example), None
    except Exception as exc:  # noqa: BLE001 - tracers fail in many ways on quantized or exported graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{counter.__name__} could not count this model ({first[:120]})"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _eager_rows(layout, modules, leaves, per_module, repeats: int, e2e_ms: float) -> tuple[list, list]:
    """Per-layer and per-module-group rows from eager's hook times."""
    layer_rows = []
    for leaf in leaves:
        if per_module[leaf]:
            block, op = layout.layer_label(leaf, modules[leaf])
            layer_rows.append({"block": block, "op": op, "module": leaf, "latency_ms": _median(per_module[leaf])})
    module_rows = []
    for group, members in layout.module_groups.items():
        samples = [sum(per_module[m][i] for m in members) for i in range(repeats) if all(per_module[m] for m in members)]
        if samples:
            module_rows.append(_module_row(group, samples, e2e_ms))
    return layer_rows, module_rows


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
    runtime: str = "torch",
    precision: str = "fp32",
) -> dict:
    """Profile ``model`` on a seeded input of ``input_shape``; returns the JSON record.

    Timing interleaves clean forwards (the end-to-end latency) with instrumented forwards (the
    per-module and per-layer times), so both see the same machine state; the instrumented
    forward's own end-to-end time gives the instrumentation's overhead. On ``runtime="torch"`` the
    instrumented forward is eager with module hooks (bf16: under autocast; int8: the FX-quantized
    model, which is then the model profiled). On ``onnxruntime`` / ``openvino`` the clean forward is
    the runtime's runner and the instrumented one a profiling copy of it, whose per-op times are
    mapped onto the same module groups and blocks (:mod:`compressbench.runtimes.attribution`).
    """
    if len(input_shape) != 4 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"input_shape must be 4 positive sizes (B, C, H, W), got {tuple(input_shape)}")
    if repeats <= 0 or warmup < 0:
        raise ValueError("repeats must be positive and warmup non-negative")
    runtime, precision = parse_runtime(runtime, precision)
    check_runtime(runtime, precision)
    model = model.eval()
    example = example_input(input_shape, seed)

    with torch_threads(threads) as threads_used:
        prepared = prepare(runtime, model, example, threads_used, precision)
        if runtime == "torch":
            model = prepared.module  # what runs: the FX-quantized model for int8
        layout = layout_for(model)
        modules = dict(model.named_modules())
        leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
        shapes = capture_shapes(model, example)
        fv, fv_error = _count_or_none(macs_fvcore, model, example)
        th, th_error = _count_or_none(macs_thop, model, example)
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
            stats = measure_interleaved(
                timed, warmup, repeats, on_round=lambda _: advance()
            )
        for values in per_module.values():  # drop the warm-up rounds
            del values[: len(values) - repeats]

    end_to_end = stats["clean"]
    e2e_ms = end_to_end.median
    if runtime == "torch":
        layer_rows, module_rows = _eager_rows(layout, modules, leaves, per_module, repeats, e2e_ms)
    elif instrumented is not None:
        layer_rows, module_rows = _runtime_rows(attribute(instrumented.calls(repeats)), e2e_ms)
    else:  # a runtime without a per-op profiler here (executorch): end-to-end only
        layer_rows, module_rows = [], []
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
    else:
        attribution["unavailable"] = f"per-op attribution is not available for {runtime} in this build"
    block_rows = [
        {
            "name": label,
            "module": module_name,
            "input_shape": list(shapes.get(module_name, ((), ()))[0]),
            "output_shape": list(shapes.get(module_name, ((), ()))[1]),
            "params": count_params(modules[module_name]),
            "macs": fv.by_module.get(module_name, 0) if fv else None,
            "macs_thop": th.by_module.get(module_name, 0) if th else None,
        }
        for label, module_name in layout.blocks
    ]
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
    return {
        "model": name,
        "params": count_params(model),
        "macs_fvcore": fv.total if fv else None,
        "macs_thop": th.total if th else None,
        "macs_notes": explain_mac_difference(model, fv, th) if fv and th else [e for e in (fv_error, th_error) if e],
        "size_mb": weight_size_mb(model),
        "latency_ms": {"median": e2e_ms, "p10": end_to_end.p10, "p90": end_to_end.p90, "iqr": end_to_end.iqr, "runs": end_to_end.runs},
        "batch": int(input_shape[0]),
        "input_size": int(input_shape[-1]),
        "input_shape": [int(d) for d in input_shape],
        "threads": threads_used,
        "warmup": warmup,
        "seed": seed,
        "modules": module_rows,
        "blocks": block_rows,
        "layers": layer_rows,
        "tree": tree_rows,
        "attribution": attribution,
        "hourglass_layout": layout.hourglass,
        "runtime": prepared.record.to_dict(),
        "env": {**env, "runtime": runtime, "runtime_version": prepared.record.version, "precision": precision,
                "precision_used": prepared.record.precision_used, "omp_wait_policy": openmp_wait_policy()},
    }
