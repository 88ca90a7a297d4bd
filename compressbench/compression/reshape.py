"""Record the shape of every tensor in a module's state, and resize a fresh module to match.

Structural methods (pruning, and anything else that only narrows layers) store
:func:`record_shapes` of their result and rebuild with :func:`resize_to_shapes`: every layer
whose tensors differ from the recorded shapes is replaced by a fresh layer of the recorded shape
(weights are arbitrary; the saved state dict is loaded afterwards). This is simpler and more
robust than replaying the method that produced the shapes.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from compressbench.compression.base import replace_submodule
from compressbench.errors import CompressbenchError

MAX_NAMED = 3


def record_shapes(module: nn.Module) -> dict[str, list[int]]:
    """``{state-dict key: shape}`` for every parameter and persistent buffer (JSON-like)."""
    return {key: list(tensor.shape) for key, tensor in module.state_dict().items()}


def _resized_conv2d(old: nn.Conv2d, shapes: dict[str, list[int]]) -> nn.Conv2d:
    out_channels, in_per_group = shapes["weight"][0], shapes["weight"][1]
    depthwise = old.groups > 1 and old.groups == old.in_channels == old.out_channels
    groups = out_channels if depthwise else old.groups
    return nn.Conv2d(
        in_per_group * groups,
        out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dilation=old.dilation,
        groups=groups,
        bias="bias" in shapes,
        padding_mode=old.padding_mode,
    )


def _resized_batchnorm2d(old: nn.BatchNorm2d, shapes: dict[str, list[int]]) -> nn.BatchNorm2d:
    features = next(shape[0] for key, shape in shapes.items() if key != "num_batches_tracked")
    return nn.BatchNorm2d(
        features, eps=old.eps, momentum=old.momentum, affine=old.affine, track_running_stats=old.track_running_stats
    )


def _resized_linear(old: nn.Linear, shapes: dict[str, list[int]]) -> nn.Linear:
    out_features, in_features = shapes["weight"]
    return nn.Linear(in_features, out_features, bias="bias" in shapes)


# Exact type -> builder of a fresh layer with the recorded shapes (subclasses may carry more state).
RESIZERS: dict[type, Callable[[nn.Module, dict[str, list[int]]], nn.Module]] = {
    nn.Conv2d: _resized_conv2d,
    nn.BatchNorm2d: _resized_batchnorm2d,
    nn.Linear: _resized_linear,
}


def _by_owner(shapes: dict[str, list[int]]) -> dict[str, dict[str, list[int]]]:
    """``{"a.conv.weight": s}`` -> ``{"a.conv": {"weight": s}}``."""
    out: dict[str, dict[str, list[int]]] = {}
    for key, shape in shapes.items():
        owner, _, leaf = key.rpartition(".")
        out.setdefault(owner, {})[leaf] = list(shape)
    return out


def resize_to_shapes(module: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Replace (in place) every layer of ``module`` whose state differs from ``shapes`` by a fresh
    layer of the recorded shape; returns ``module``. Raises CompressbenchError when the recorded
    shapes do not describe a resized ``module`` (other keys, or a layer type that cannot be resized)."""
    recorded = _by_owner(shapes)
    present = _by_owner(record_shapes(module))
    mismatched = sorted(o for o in set(recorded) | set(present) if recorded.get(o) != present.get(o))
    for owner in mismatched:
        old = module.get_submodule(owner) if owner and owner in present else None
        resizer = RESIZERS.get(type(old))
        if resizer is None or owner not in recorded:
            kind = type(old).__name__ if old is not None else "absent"
            raise CompressbenchError(
                f"the saved structure changes {owner or 'the model itself'} ({kind}) in a way resizing cannot "
                "rebuild; the file does not belong to this base model"
            )
        new = resizer(old, recorded[owner])
        reference = next(iter(old.parameters()), None)
        if reference is not None:
            new = new.to(device=reference.device, dtype=reference.dtype)
        replace_submodule(module, owner, new)

    after = record_shapes(module)
    wrong = [k for k in set(after) | set(shapes) if after.get(k) != (list(shapes[k]) if k in shapes else None)]
    if wrong:
        more = f" (+{len(wrong) - MAX_NAMED} more)" if len(wrong) > MAX_NAMED else ""
        raise CompressbenchError(
            f"the saved structure does not fit this base model (keys {', '.join(sorted(wrong)[:MAX_NAMED])}{more})"
        )
    return module
