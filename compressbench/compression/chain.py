"""Chains of methods (``exact,prune,quantize``), option namespacing, saving and reloading variants."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from compressbench.compression.base import CompressionContext
from compressbench.compression.order import order_stages
from compressbench.compression.registry import get_method
from compressbench.errors import CompressbenchError
from compressbench.models.saved import register_architecture, save_model


@dataclass
class Variant:
    """A model produced by a chain prefix, with everything needed to describe and rebuild it."""

    name: str
    module: nn.Module
    stages: list[dict] = field(default_factory=list)  # [{"method", "options", "structure", "report"}]
    int8: bool = False
    base: dict = field(default_factory=dict)  # {"model": name, "config": {...}} or {"file": ...}

    @property
    def method(self) -> str:
        return ",".join(stage["method"] for stage in self.stages) or "none"


def parse_chain(spec: str | list[str]) -> list[str]:
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


def compress(
    model: nn.Module,
    chain: str | list[str],
    options: list[dict] | None = None,
    context: CompressionContext | None = None,
    base: dict | None = None,
    name: str = "teacher",
) -> list[Variant]:
    """Apply the chain left to right; returns one :class:`Variant` per stage (the last is the result).
    ``model`` itself is never modified."""
    names = parse_chain(chain)
    options = options if options is not None else [get_method(n).resolve({}) for n in names]
    if len(options) != len(names):
        raise ValueError("one options dict per stage is required")
    context = context or CompressionContext()
    context = context if context.teacher is not None else replace(context, teacher=model)
    names, options, moves = order_stages(names, options)
    current = copy.deepcopy(model).eval()
    stages: list[dict] = []
    variants = []
    int8 = False
    for method_name, stage_opts in zip(names, options):
        result = get_method(method_name).apply(current, stage_opts, context)
        current = result.module.eval()
        int8 = int8 or result.int8
        report = {**result.report, **moves.get(len(stages), {})}
        stages.append({"method": method_name, "options": dict(stage_opts), "structure": result.structure, "report": report})
        label = name + "+" + "+".join(s["method"] for s in stages)
        variants.append(Variant(label, current, copy.deepcopy(stages), int8, dict(base or {})))
    return variants


def has_known_base(base: dict) -> bool:
    """Whether a chain's start can be rebuilt: a registered model (``{"model", "config"}``) or a
    saved model of a registered architecture (``{"architecture", "builder_args"}``, e.g. a student)."""
    return bool(base.get("model") or base.get("architecture"))


def build_base(base: dict) -> nn.Module:
    """The (untrained) module a chain starts from, as :func:`has_known_base` describes it."""
    from compressbench.models import DetectorConfig, create_model
    from compressbench.models.saved import ARCHITECTURES

    if base.get("architecture"):
        return ARCHITECTURES.get(base["architecture"])(base.get("builder_args") or {}).eval()
    config = DetectorConfig(**base["config"]) if base.get("config") else None
    return create_model(base["model"], config).eval()


def save_variant(variant: Variant, path: str | Path, metadata: dict | None = None) -> Path:
    """Save a variant so ``load_model(path)`` rebuilds it by replaying the chain's structure."""
    if not has_known_base(variant.base):
        raise CompressbenchError("only variants of a registered model or a saved model can be saved (base model unknown)")
    stages = [{k: s[k] for k in ("method", "options", "structure")} for s in variant.stages]
    args = {"base": variant.base, "stages": stages}
    meta = {"name": variant.name, "method": variant.method, "int8": variant.int8, **(metadata or {})}
    return save_model(variant.module, path, "chain", args, meta)


@register_architecture("chain")
def _rebuild_chain(args: dict) -> nn.Module:
    module = build_base(args["base"])
    for stage in args.get("stages", []):
        module = get_method(stage["method"]).rebuild(module, stage["options"], stage.get("structure") or {})
    return module.eval()
