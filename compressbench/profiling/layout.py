"""How a model's modules map onto seed 000's tables: module groups, hourglass blocks, and
(block, op) labels for each layer. Models without the detector structure get a generic layout."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

# Seed 000's op names for the hourglass's layer attributes.
ENCODER_OPS = {"conv": "conv", "norm": "batchnorm", "relu": "relu", "pool": "avgpool"}
DECODER_OPS = {"upsample": "interpolation", "conv": "conv", "norm": "batchnorm", "relu": "relu"}
HEAD_LAYERS = {
    "down": ("anti_alias", "blur_subsample"),
    "kp": ("heatmap_keypoint", "conv"),
    "softmax": ("heatmap_keypoint", "softmax"),
    "soft_argmax": ("heatmap_keypoint", "soft_argmax"),
    "jacobian": ("jacobian", "conv"),
    "jacobian_pool": ("jacobian", "weighted_sum"),
}
MODULE_GROUPS = {
    "anti_alias": ["down"],
    "hourglass": ["predictor"],
    "heatmap_keypoint": ["kp", "softmax", "soft_argmax"],
    "jacobian": ["jacobian", "jacobian_pool"],
}
_DOWN = re.compile(r"^predictor\.encoder\.down_blocks\.(\d+)\.(\w+)$")
_UP = re.compile(r"^predictor\.decoder\.up_blocks\.(\d+)\.(\w+)$")
_CONCAT = re.compile(r"^predictor\.decoder\.concats\.(\d+)$")


@dataclass
class Layout:
    """Where each table's rows come from."""

    module_groups: dict[str, list[str]]
    blocks: list[tuple[str, str]]  # (label, module name)
    hourglass: bool = False
    num_blocks: int = 0
    extra: dict = field(default_factory=dict)

    def layer_label(self, name: str, module: nn.Module) -> tuple[str, str]:
        """(block, op) for a leaf module: seed 000's names on the hourglass, else parent/attr."""
        if self.hourglass:
            if m := _DOWN.match(name):
                return f"downblock_{int(m[1]) + 1}", ENCODER_OPS.get(m[2], m[2])
            if m := _UP.match(name):
                return f"upblock_{int(m[1]) + 1}", DECODER_OPS.get(m[2], m[2])
            if m := _CONCAT.match(name):
                return f"upblock_{int(m[1]) + 1}", "concat"
        if name in HEAD_LAYERS:
            return HEAD_LAYERS[name]
        parent, _, attr = name.rpartition(".")
        return parent or "model", attr or type(module).__name__


def is_detector(model: nn.Module) -> bool:
    return hasattr(model, "predictor") and hasattr(model, "kp") and hasattr(model, "soft_argmax")


def is_hourglass(predictor: nn.Module) -> bool:
    """True for FOMM's hourglass (also pruned or swapped); False for students and traced graphs,
    whose submodules are no longer ModuleLists."""
    encoder = getattr(predictor, "encoder", None)
    decoder = getattr(predictor, "decoder", None)
    return isinstance(getattr(encoder, "down_blocks", None), nn.ModuleList) and isinstance(
        getattr(decoder, "up_blocks", None), nn.ModuleList
    )


def layout_for(model: nn.Module) -> Layout:
    """The layout of a keypoint detector (teacher, pruned teacher, student) or a generic one."""
    names = dict(model.named_modules())
    if not is_detector(model):
        groups = {name: [name] for name, _ in model.named_children()}
        return Layout(module_groups=groups, blocks=[(name, name) for name in groups])
    groups = {group: [m for m in members if m in names] for group, members in MODULE_GROUPS.items()}
    groups = {group: members for group, members in groups.items() if members}
    predictor = model.predictor
    if is_hourglass(predictor):
        n = len(predictor.encoder.down_blocks)
        blocks = [(f"down_sampling_{i + 1}", f"predictor.encoder.down_blocks.{i}") for i in range(n)]
        blocks += [(f"upsampling_{i + 1}", f"predictor.decoder.up_blocks.{i}") for i in range(len(predictor.decoder.up_blocks))]
        blocks.append(("hour_glass", "predictor"))
        return Layout(groups, blocks, hourglass=True, num_blocks=n)
    blocks = [(name, f"predictor.{name}") for name, _ in predictor.named_children()]
    blocks.append((getattr(predictor, "profile_label", "predictor"), "predictor"))
    return Layout(groups, blocks)
