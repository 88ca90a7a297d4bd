"""Structured channel pruning with torch-pruning.

torch-pruning traces the detector's autograd graph, so the hourglass's concatenation skips are
part of its dependency graph: removing an up block's output channel also removes the matching
input channel of the convolution that reads the concatenation. The detector's dict output is
flattened by torch-pruning itself, so no wrapper is needed. The heads' output channels
(``kp``: one heatmap per keypoint, ``jacobian``: four maps per keypoint) and the anti-alias
``down`` stage are left alone, so the outputs keep their meaning; the image's 3 channels are the
input of the graph and are never pruned.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.methods import register_method
from compressbench.compression.reshape import record_shapes, resize_to_shapes
from compressbench.errors import CompressbenchError
from compressbench.profiling.counting import count_params
from compressbench.progress import progress_bar
from compressbench.registry import Registry

TAYLOR_FRAMES = 8  # frames whose gradients score channels for taylor importance
TAYLOR_BATCH = 4
PROTECTED_HEADS = ("kp", "jacobian", "down")  # outputs keep their meaning; down holds only a buffer


@dataclass(frozen=True)
class ImportanceSpec:
    """How to build a torch-pruning importance, and whether it reads gradients."""

    factory: Callable[[], object]
    needs_gradients: bool = False


IMPORTANCES: Registry[ImportanceSpec] = Registry("pruning importance")
IMPORTANCES.register("l1", ImportanceSpec(lambda: tp.importance.MagnitudeImportance(p=1)))
IMPORTANCES.register("l2", ImportanceSpec(lambda: tp.importance.MagnitudeImportance(p=2)))
IMPORTANCES.register("bn-scale", ImportanceSpec(tp.importance.BNScaleImportance))
IMPORTANCES.register("taylor", ImportanceSpec(tp.importance.TaylorImportance, needs_gradients=True))
IMPORTANCES.register("random", ImportanceSpec(tp.importance.RandomImportance))


def _check_ratio(value: float) -> str | None:
    return (
        None if 0 < value < 1 else f"must be strictly between 0 and 1 (the fraction of channels removed), got {value}"
    )


def parse_block_ratios(text: str) -> dict[str, float]:
    """``"encoder.down_blocks.0:0.2,decoder.up_blocks.4:0.6"`` -> ``{name: ratio}`` (names of
    modules under the predictor; empty text: no overrides). Raises ValueError naming the bad entry."""
    out: dict[str, float] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, value = entry.rpartition(":")
        if not sep or not name:
            raise ValueError(f"entry {entry!r} is not BLOCK:RATIO (e.g. decoder.up_blocks.4:0.6)")
        try:
            ratio = float(value)
        except ValueError:
            raise ValueError(f"entry {entry!r}: {value!r} is not a number") from None
        if not 0 <= ratio < 1:
            raise ValueError(f"entry {entry!r}: the ratio must be in [0, 1), got {ratio:g}")
        if name in out:
            raise ValueError(f"block {name!r} is named twice")
        out[name] = ratio
    return out


def _check_block_ratios(text: str) -> str | None:
    try:
        parse_block_ratios(text)
    except ValueError as exc:
        return str(exc)
    return None


def format_block_ratios(ratios: dict[str, float]) -> str:
    """The inverse of :func:`parse_block_ratios`, blocks in the given order."""
    return ",".join(f"{name}:{ratio:g}" for name, ratio in ratios.items())


def prunable_blocks(model: nn.Module) -> list[str]:
    """The predictor's blocks whose output channels prune can remove (the ``ratios`` names)."""
    predictor = getattr(model, "predictor", None)
    if predictor is None:
        return []
    return [name for name, m in predictor.named_modules() if name and any(isinstance(c, nn.Conv2d) for c in m.children())]


def _block_overrides(model: nn.Module, text: str) -> tuple[dict[nn.Module, float], list[nn.Module]]:
    """torch-pruning's per-module ratios, and the blocks kept whole (ratio 0: their convolutions'
    outputs are not pruned, their inputs still follow the block before them)."""
    ratios = parse_block_ratios(text)
    if not ratios:
        return {}, []
    known = prunable_blocks(model)
    unknown = [name for name in ratios if name not in known]
    if unknown:
        raise CompressbenchError(
            f"prune: ratios names {', '.join(unknown)}, not a prunable block of this model; known: {', '.join(known)}"
        )
    modules = dict(model.predictor.named_modules())
    whole = [c for name, r in ratios.items() if r == 0 for c in modules[name].children() if isinstance(c, nn.Conv2d)]
    return {modules[name]: r for name, r in ratios.items() if r > 0}, whole


def _check_steps(value: int) -> str | None:
    return None if value >= 1 else f"must be at least 1 (the number of pruning steps), got {value}"


def _protected_layers(model: nn.Module) -> list[nn.Module]:
    if not isinstance(getattr(model, "kp", None), nn.Conv2d):
        raise CompressbenchError(
            f"prune works on keypoint detectors (a model with a 'kp' convolution head), not on {type(model).__name__}"
        )
    return [getattr(model, name) for name in PROTECTED_HEADS if getattr(model, name, None) is not None]


def _conv_widths(model: nn.Module) -> dict[str, tuple[int, int]]:
    return {name: (m.in_channels, m.out_channels) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _shapes(outputs: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in outputs.items()}


def _taylor_loss(outputs: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> torch.Tensor:
    # Taylor importance scores a channel by |weight * dL/dweight|: a first-order estimate of how much
    # L changes when the channel goes. There are no labels, so L must be label-free. The MSE to the
    # unpruned outputs alone has zero gradient before the first step (the model *is* the reference),
    # so L adds the heatmaps' mean entropy, which every channel influences through the heatmaps and
    # whose change tracks how sharp (confident) the keypoints stay. In later iterative steps the MSE
    # term scores channels by how much they move the keypoints and jacobians away from the original.
    heatmap = outputs["heatmap"].clamp_min(1e-12)
    entropy = -(heatmap * heatmap.log()).sum(dim=(2, 3)).mean()
    drift = sum(F.mse_loss(outputs[key], reference[key]) for key in ("value", "jacobian") if key in reference)
    return entropy + drift


def _accumulate_taylor_gradients(model: nn.Module, frames: torch.Tensor, reference: dict[str, torch.Tensor]) -> None:
    model.zero_grad(set_to_none=True)
    for start in range(0, len(frames), TAYLOR_BATCH):
        batch = frames[start : start + TAYLOR_BATCH]
        ref = {k: v[start : start + TAYLOR_BATCH] for k, v in reference.items()}
        loss = _taylor_loss(model(batch), ref) * (len(batch) / len(frames))
        loss.backward()


@register_method
class Prune(CompressionMethod):
    name = "prune"
    structural = True
    summary = "structured channel pruning (torch-pruning): narrower convolutions, skips kept consistent"
    options = (
        Option("ratio", float, 0.5, "fraction of channels removed, in (0, 1)", check=_check_ratio),
        Option(
            "importance",
            str,
            "l2",
            "channel importance: l1/l2 weight norm, bn-scale, taylor (needs frames), random",
            choices=tuple(IMPORTANCES.names()),
        ),
        Option(
            "global_pruning", bool, False, "rank channels across all layers (global) instead of per layer (uniform)"
        ),
        Option("iterative", int, 1, "number of pruning steps reaching the ratio", check=_check_steps),
        Option(
            "ratios",
            str,
            "",
            "per-block ratios overriding ratio, BLOCK:RATIO,... with blocks named under the predictor "
            "(e.g. decoder.up_blocks.4:0.7; a ratio of 0 keeps the block whole)",
            check=_check_block_ratios,
        ),
    )

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        spec = IMPORTANCES.get(options["importance"])
        if options["importance"] == "bn-scale" and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            raise CompressbenchError(
                "prune: importance bn-scale needs BatchNorm layers and this model has none (folded by exact?); "
                "prune before exact, or use importance l1/l2/taylor"
            )
        pruned = copy.deepcopy(model).eval()
        protected = _protected_layers(pruned)
        for parameter in pruned.parameters():
            parameter.requires_grad_(True)  # torch-pruning traces the autograd graph
        example = context.example()[:1]
        with torch.no_grad():
            expected_shapes = _shapes(pruned(example))
        widths_before = _conv_widths(pruned)
        params_before = count_params(pruned)

        frames = reference = None
        if spec.needs_gradients:
            frames = context.frames(TAYLOR_FRAMES)
            with torch.no_grad():
                reference = {k: v.detach() for k, v in pruned(frames).items()}

        steps = options["iterative"]
        per_block, kept_whole = _block_overrides(pruned, options["ratios"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)  # random importance draws from torch's global RNG
            pruner = tp.pruner.BasePruner(
                pruned,
                example,
                importance=spec.factory(),
                global_pruning=options["global_pruning"],
                pruning_ratio=options["ratio"],
                pruning_ratio_dict=per_block or None,
                iterative_steps=steps,
                ignored_layers=protected + kept_whole,
                forward_fn=lambda module, inputs: module(inputs),
            )
            with progress_bar("prune", steps, context.show_progress) as advance:
                for _ in range(steps):
                    if frames is not None:
                        _accumulate_taylor_gradients(pruned, frames, reference)
                    pruner.step()
                    advance()
        pruned.zero_grad(set_to_none=True)
        pruned.eval()

        with torch.no_grad():
            got_shapes = _shapes(pruned(example))
        if got_shapes != expected_shapes:
            raise RuntimeError(f"pruning changed the output shapes: {expected_shapes} -> {got_shapes}")

        widths_after = _conv_widths(pruned)
        params_after = count_params(pruned)
        report = {
            "importance": options["importance"],
            "scope": "global" if options["global_pruning"] else ("per-block" if options["ratios"] else "uniform"),
            "steps": steps,
            "params_before": params_before,
            "params_after": params_after,
            "params_kept": params_after / params_before,
            "layers": [
                {
                    "layer": name,
                    "in_before": widths_before[name][0],
                    "in_after": widths_after[name][0],
                    "out_before": widths_before[name][1],
                    "out_after": widths_after[name][1],
                }
                for name in widths_after
            ],
        }
        return StageResult(pruned, {"shapes": record_shapes(pruned)}, report)

    def scores_channels(self, options: dict) -> bool:
        return options.get("importance") != "random"  # random draws ignore weights and BatchNorm

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Resize ``model``'s layers (in place) to the recorded pruned shapes."""
        if "shapes" not in structure:
            raise CompressbenchError("the saved prune stage has no recorded shapes; re-create the variant")
        return resize_to_shapes(model, structure["shapes"])
