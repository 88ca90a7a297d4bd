"""Chains of methods (``exact,prune,quantize``): parsing, per-stage options, applying, replaying.

This module knows nothing of files or where a model came from (see :mod:`compressbench.provenance`):
a stage is described by a plain dict ``{"method", "options", "structure", "report", "int8"}``.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from torch import nn

from compressbench.compression.base import CompressionContext
from compressbench.compression.methods import get_method
from compressbench.compression.order import order_stages
from compressbench.errors import CompressbenchError


def parse_chain(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"exact,prune"`` -> ``["exact", "prune"]``; every name must be registered."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    if not names:
        raise CompressbenchError("empty method chain; give at least one method, e.g. --method prune")
    for name in names:
        get_method(name)
    return names


def stage_options(chain: list[str], common: dict, namespaced: dict[str, dict]) -> list[dict]:
    """Options per stage: ``common`` values go to every stage that has that option; ``namespaced``
    (keyed by method name or 1-based stage index) override them for one stage. A common option no
    stage accepts is an error (it was probably mistyped)."""
    per_stage = []
    used = set()
    for index, name in enumerate(chain, start=1):
        method = get_method(name)
        accepted = set(method.option_names())
        given = {k: v for k, v in common.items() if k in accepted and v is not None}
        used |= set(given)
        for key in (name, str(index)):
            given.update(namespaced.get(key, {}))
        per_stage.append(method.resolve(given))
    stray = sorted(k for k, v in common.items() if v is not None and k not in used)
    if stray:
        raise CompressbenchError(f"option(s) {', '.join(stray)} apply to none of the methods {', '.join(chain)}")
    for key in namespaced:
        if key not in chain and not (key.isdigit() and 1 <= int(key) <= len(chain)):
            raise CompressbenchError(f"--set names {key!r}, which is not a stage of the chain {','.join(chain)}")
    return per_stage


def parse_set_options(items: list[str]) -> dict[str, dict]:
    """``["prune.ratio=0.3", "2.rank=8"]`` -> ``{"prune": {"ratio": "0.3"}, "2": {"rank": "8"}}``."""
    out: dict[str, dict] = {}
    for item in items:
        target, sep, value = item.partition("=")
        stage, dot, option = target.partition(".")
        if not sep or not dot or not stage or not option:
            raise CompressbenchError(f"--set expects STAGE.OPTION=VALUE (e.g. prune.ratio=0.3), got {item!r}")
        out.setdefault(stage, {})[option.replace("-", "_")] = value
    return out


def resolve_options(names: list[str], options: list[dict] | None) -> list[dict]:
    """Each stage's options with the method's defaults filled in (``None``: defaults only)."""
    if options is None:
        options = [{} for _ in names]
    if len(options) != len(names):
        raise CompressbenchError(f"give one options dict per stage: {len(names)} stages, {len(options)} dicts")
    return [get_method(name).resolve(dict(given or {})) for name, given in zip(names, options)]


def apply_chain(
    model: nn.Module, chain: str | list[str], options: list[dict] | None = None, context: CompressionContext | None = None
) -> list[tuple[nn.Module, dict]]:
    """Apply the chain left to right: ``(module, stage)`` after every stage. ``model`` is never
    modified; options are merged with each method's defaults, so ``[{"ratio": 0.5}]`` is enough.
    Stages run in the order :func:`compressbench.compression.order.order_stages` decides (a moved
    stage's report says so); ``recover`` stages agree with ``context.teacher``, by default ``model``."""
    names = parse_chain(chain)
    resolved = resolve_options(names, options)
    context = context or CompressionContext()
    context = context if context.teacher is not None else replace(context, teacher=model)  # what recover agrees with
    names, resolved, moves = order_stages(names, resolved)  # e.g. BatchNorm folding after channel pruning
    current = copy.deepcopy(model).eval()
    steps = []
    for method_name, stage_opts in zip(names, resolved):
        method = get_method(method_name)
        result = method.apply(current, stage_opts, context)
        current = result.module.eval()
        report = {**result.report, **moves.get(len(steps), {})}
        stage = {
            "method": method_name, "options": dict(stage_opts), "structure": result.structure,
            "report": report, "int8": bool(result.int8),
        }  # fmt: skip
        steps.append((current, stage))
    return steps


def replay(module: nn.Module, stages: list[dict]) -> nn.Module:
    """Recreate the shapes ``stages`` produced on ``module`` (a freshly built base): each registered
    method's ``rebuild(module, options, structure)``, in order. Weights are left arbitrary."""
    for stage in stages:
        method = get_method(stage["method"])
        module = method.rebuild(module, method.resolve(dict(stage.get("options") or {})), stage.get("structure") or {})
    return module.eval()
