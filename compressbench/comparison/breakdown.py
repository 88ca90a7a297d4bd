"""Per-module times of several models side by side (seed 000's first table, one column pair each).

Each model's module groups (anti_alias / hourglass / heatmap_keypoint / jacobian, from
:data:`compressbench.profiling.layout.MODULE_GROUPS`) are timed in place by
:class:`compressbench.profiling.module_timer.ModuleTimer` during a real forward. The instrumented
forwards are callables for :func:`compressbench.profiling.measure_interleaved`, so they run in the
same interleaved rounds as the clean ones.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from compressbench.profiling.layout import MODULE_GROUPS, is_detector
from compressbench.profiling.module_timer import ModuleTimer


def module_groups(model: nn.Module) -> dict[str, list[str]]:
    """Seed 000's module groups present in ``model`` (a detector), else one group per child.

    Only the groups are needed here, not the hourglass's block layout, so this also works where the
    predictor was rewritten (e.g. an FX-quantized GraphModule keeps ``predictor`` but not its blocks).
    """
    names = dict(model.named_modules())
    if not is_detector(model):
        return {name: [name] for name, _ in model.named_children()}
    groups = {group: [m for m in members if m in names] for group, members in MODULE_GROUPS.items()}
    return {group: members for group, members in groups.items() if members}


class GroupTimer:
    """A callable that runs one instrumented forward and records each module group's time."""

    def __init__(self, module: nn.Module, batch: torch.Tensor) -> None:
        self.groups = module_groups(module)
        self._module = module
        self._batch = batch
        self._timer = ModuleTimer(module, [name for members in self.groups.values() for name in members])
        self.samples: dict[str, list[float]] = {group: [] for group in self.groups}

    def __call__(self) -> None:
        # Hooks go on for this call only, so the clean forwards of the same module stay unhooked.
        with self._timer:
            times = self._timer.run(lambda: self._module(self._batch))
        for group, members in self.groups.items():
            if all(name in times for name in members):  # a group whose hooks never fired stays empty
                self.samples[group].append(sum(times[name] for name in members))

    def medians(self, repeats: int) -> dict[str, float | None]:
        """Median ms per group over the last ``repeats`` calls (the warm-up calls are dropped)."""
        return {g: statistics.median(s[-repeats:]) if s else None for g, s in self.samples.items()}


def side_by_side(medians: dict[str, dict[str, float | None]], totals: dict[str, float | None]) -> list[dict]:
    """Rows ``{module, <row>_ms, <row>_share, ...}`` per group, then ``total`` (the end-to-end
    median); ``share`` is the group's median over that model's end-to-end median."""
    groups: list[str] = []
    for per_group in medians.values():
        groups += [g for g in per_group if g not in groups]
    rows = []
    for group in groups:
        row: dict = {"module": group}
        for name, per_group in medians.items():
            ms = per_group.get(group)
            total = totals.get(name)
            row[f"{name}_ms"] = ms
            row[f"{name}_share"] = ms / total if ms is not None and total else None
        rows.append(row)
    total_row: dict = {"module": "total"}
    for name in medians:
        total_row[f"{name}_ms"] = totals.get(name)
        total_row[f"{name}_share"] = 1.0 if totals.get(name) else None
    rows.append(total_row)
    return rows
