"""One naming scheme for blocks and layers: how any variant's modules map onto seed 000's tables.

The names are the teacher's, as seed 000's tables print them: module groups ``anti_alias``,
``hourglass``, ``heatmap_keypoint``, ``jacobian``; hourglass blocks ``downblock_1..n`` and
``upblock_1..n`` (the whole predictor is ``hourglass``); ops ``conv``, ``batchnorm``, ``relu``,
``avgpool``, ``interpolation``, ``concat``. Every variant's layers map onto them:

- the teacher, an exact variant (``norm`` is an Identity after folding), a pruned one: by name;
- swapped convolutions (dsconv, asym: a pair in place of ``conv``): ``conv.depthwise``,
  ``conv.pointwise``, ``conv.vertical``, ... whose op family (before the dot) is ``conv``;
- FX-quantized parts (a ``torch.fx.GraphModule`` keeps qualified submodule names such as
  ``encoder.down_blocks.0.conv``, fused ``encoder_down_blocks_0_conv`` where a graph flattens them,
  and a head traced alone holds its conv as ``kp.0``);
- students keep their own block names (the predictor's children, ``encoder``, ``decoder``) under
  the same vocabulary: layers are labelled (block, path inside the block), heads as the teacher's.

Models without the detector structure get a generic layout (parent, attribute).
"""

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
HOURGLASS = "hourglass"  # the teacher's whole predictor, in every table
DOWN_BLOCK, UP_BLOCK = "downblock", "upblock"

# ``.`` in module names, ``_`` where a traced graph flattened them into attribute names.
_SEP = r"[._]"
_DOWN = re.compile(rf"^predictor{_SEP}encoder{_SEP}down_blocks{_SEP}(\d+)(?:{_SEP}(.+))?$")
_UP = re.compile(rf"^predictor{_SEP}decoder{_SEP}up_blocks{_SEP}(\d+)(?:{_SEP}(.+))?$")
_CONCAT = re.compile(rf"^predictor{_SEP}decoder{_SEP}concats{_SEP}(\d+)$")
_TRACED_WRAPPER = re.compile(r"^\d+$")  # a head traced alone: its conv is the GraphModule's "0"


def block_name(kind: str, index: int) -> str:
    """``downblock_3`` for the encoder's third block (1-based, as seed 000 counts)."""
    return f"{kind}_{index}"


def forward_order(blocks: list[str]) -> list[str]:
    """Block labels in the order the detector runs them (anti-alias, down, up, heads); labels of
    other models keep their given order, after those."""
    stage = {"anti_alias": 0, DOWN_BLOCK: 1, UP_BLOCK: 2, HOURGLASS: 3, "heatmap_keypoint": 5, "jacobian": 6}

    def key(item):
        position, label = item
        kind, _, index = label.rpartition("_")
        if kind in (DOWN_BLOCK, UP_BLOCK) and index.isdigit():
            return stage[kind], int(index)
        return stage.get(label, 4), position  # a student's own blocks sit where the hourglass would

    return [label for _, label in sorted(enumerate(blocks), key=key)]


def op_family(op: str) -> str:
    """The seed-table row an op belongs to: ``conv.depthwise`` -> ``conv``."""
    return op.split(".", 1)[0]


def _op(rest: str | None, ops: dict[str, str]) -> str:
    if not rest:
        return "block"
    head, dot, tail = rest.partition(".")
    if not dot:  # fused names: the first known attribute, then the remainder
        for attr in ops:
            if rest == attr or rest.startswith(attr + "_"):
                head, tail = attr, rest[len(attr) + 1 :]
                break
    label = ops.get(head, head)
    return f"{label}.{tail}" if tail else label


def hourglass_label(name: str) -> tuple[str, str] | None:
    """(block, op) for a module of FOMM's hourglass, whatever became of it; None otherwise."""
    if m := _DOWN.match(name):
        return block_name(DOWN_BLOCK, int(m[1]) + 1), _op(m[2], ENCODER_OPS)
    if m := _UP.match(name):
        return block_name(UP_BLOCK, int(m[1]) + 1), _op(m[2], DECODER_OPS)
    if m := _CONCAT.match(name):
        return block_name(UP_BLOCK, int(m[1]) + 1), "concat"
    return None


def head_label(name: str, module: nn.Module) -> tuple[str, str] | None:
    """(group, op) for the detector's heads, also when a head was traced into a GraphModule."""
    top, _, rest = name.partition(".")
    if top not in HEAD_LAYERS:
        return None
    group, op = HEAD_LAYERS[top]
    if rest and not _TRACED_WRAPPER.match(rest):
        op = f"{op}.{rest}"
    return group, op


@dataclass
class Layout:
    """Where each table's rows come from."""

    module_groups: dict[str, list[str]]
    blocks: list[tuple[str, str]]  # (label, module name); a name may be absent (flattened graphs)
    hourglass: bool = False
    num_blocks: int = 0
    predictor_label: str = "predictor"
    extra: dict = field(default_factory=dict)

    def layer_label(self, name: str, module: nn.Module) -> tuple[str, str]:
        """(block, op) for a leaf module, in the teacher's vocabulary."""
        if name == "predictor":  # a predictor run as one piece (e.g. an ONNX Runtime session)
            return self.predictor_label, type(module).__name__.lower()
        if self.hourglass and (label := hourglass_label(name)):
            return label
        if label := head_label(name, module):
            return label
        if name.startswith("predictor."):  # a student: its own block, the path inside it
            block, _, rest = name[len("predictor.") :].partition(".")
            return block, rest or type(module).__name__.lower()
        parent, _, attr = name.rpartition(".")
        return parent or "model", attr or type(module).__name__

    def block_members(self, label: str, leaves: list[str]) -> list[str]:
        """The leaves whose layers make up block ``label``, in the order given."""
        if self.hourglass and label != self.predictor_label:
            return [n for n in leaves if (hourglass_label(n) or ("",))[0] == label]
        module = dict(self.blocks).get(label)
        if module is None:
            return []
        return [n for n in leaves if n == module or n.startswith(module + ".")]


def is_detector(model: nn.Module) -> bool:
    return hasattr(model, "predictor") and hasattr(model, "kp") and hasattr(model, "soft_argmax")


def hourglass_blocks(predictor: nn.Module) -> tuple[int, int]:
    """(down blocks, up blocks) of FOMM's hourglass found by module name, so a pruned, swapped or
    FX-traced hourglass counts too; (0, 0) for students and for a predictor run as one piece."""
    down, up = set(), set()
    for name, _ in predictor.named_modules():
        full = f"predictor.{name}"
        if m := _DOWN.match(full):
            down.add(int(m[1]))
        elif m := _UP.match(full):
            up.add(int(m[1]))
    return len(down), len(up)


def is_hourglass(predictor: nn.Module) -> bool:
    """True for FOMM's hourglass (also pruned, swapped or FX-quantized); False for students."""
    down, up = hourglass_blocks(predictor)
    return down > 0 and up > 0


def layout_for(model: nn.Module) -> Layout:
    """The layout of a keypoint detector (teacher, any variant of it, student) or a generic one."""
    names = dict(model.named_modules())
    if not is_detector(model):
        groups = {name: [name] for name, _ in model.named_children()}
        return Layout(module_groups=groups, blocks=[(name, name) for name in groups])
    groups = {group: [m for m in members if m in names] for group, members in MODULE_GROUPS.items()}
    groups = {group: members for group, members in groups.items() if members}
    predictor = model.predictor
    down, up = hourglass_blocks(predictor)
    if down and up:
        blocks = [(block_name(DOWN_BLOCK, i + 1), f"predictor.encoder.down_blocks.{i}") for i in range(down)]
        blocks += [(block_name(UP_BLOCK, i + 1), f"predictor.decoder.up_blocks.{i}") for i in range(up)]
        blocks.append((HOURGLASS, "predictor"))
        return Layout(groups, blocks, hourglass=True, num_blocks=down, predictor_label=HOURGLASS)
    label = getattr(predictor, "profile_label", HOURGLASS)
    blocks = [(name, f"predictor.{name}") for name, _ in predictor.named_children()]
    blocks.append((label, "predictor"))
    return Layout(groups, blocks, predictor_label=label)
