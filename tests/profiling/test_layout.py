"""One naming scheme: every variant of a reduced teacher labels its layers with the teacher's blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.models import create_model
from compressbench.profiling import count_params
from compressbench.profiling.layout import forward_order, hourglass_label, layout_for, op_family
from compressbench.provenance import derive
from compressbench.report.markdown_report import block_bars_data
from compressbench.runtimes.profile import profile
from tests.compression.swap_helpers import frames, lively_teacher

SIZE = 64
HOURGLASS_BLOCKS = ["downblock_1", "downblock_2", "downblock_3", "upblock_1", "upblock_2", "upblock_3"]
BLOCK_ROWS = HOURGLASS_BLOCKS + ["hourglass"]
LAYER_BLOCKS = {"anti_alias", "heatmap_keypoint", "jacobian", *HOURGLASS_BLOCKS}
CONTEXT = CompressionContext(
    calibration_frames=lambda n: frames(n, SIZE, seed=5), input_shape=(1, 3, SIZE, SIZE), show_progress=False
)
CHAINS = {
    "exact": ("exact", [{}]),
    "prune": ("prune", [{"ratio": 0.5}]),
    "dsconv": ("dsconv", [{}]),
    "fx-int8": ("quantize", [{"backend": "fx", "calib": 2, "parts": "predictor,kp,jacobian"}]),
}


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def variants(teacher) -> dict[str, nn.Module]:
    out = {"teacher": teacher}
    for name, (chain, options) in CHAINS.items():
        resolved = [get_method(method).resolve(o) for method, o in zip(chain.split(","), options)]
        out[name] = derive(teacher, chain, resolved, CONTEXT)[-1].module
    return out


def labels(model: nn.Module) -> dict[str, tuple[str, str]]:
    layout = layout_for(model)
    return {n: layout.layer_label(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())}


@pytest.mark.parametrize("name", ["teacher", *CHAINS])
def test_every_variant_maps_onto_the_teachers_blocks(variants, name):
    model = variants[name]
    layout = layout_for(model)
    assert layout.hourglass and layout.num_blocks == 3
    assert [label for label, _ in layout.blocks] == BLOCK_ROWS
    assert {block for block, _ in labels(model).values()} == LAYER_BLOCKS


def test_ops_per_variant(variants):
    def ops(name, block):
        return sorted(op for b, op in labels(variants[name]).values() if b == block)

    assert ops("teacher", "downblock_1") == ["avgpool", "batchnorm", "conv", "relu"]
    assert ops("teacher", "upblock_2") == ["batchnorm", "concat", "conv", "interpolation", "relu"]
    assert ops("exact", "downblock_1") == ["avgpool", "batchnorm", "conv", "relu"]  # the folded norm is an Identity
    assert ops("prune", "upblock_2") == ops("teacher", "upblock_2")
    assert ops("dsconv", "downblock_3") == ["avgpool", "batchnorm", "conv.depthwise", "conv.pointwise", "relu"]
    # FX folds the norm and fuses the ReLU into the conv; the concat becomes a graph function
    assert ops("fx-int8", "downblock_1") == ["avgpool", "conv"]
    assert ops("fx-int8", "upblock_3") == ["conv", "interpolation"]
    assert labels(variants["fx-int8"])["kp.0"] == ("heatmap_keypoint", "conv")  # a head traced alone
    assert labels(variants["fx-int8"])["jacobian.0"] == ("jacobian", "conv")
    assert isinstance(variants["fx-int8"].predictor, torch.fx.GraphModule)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("predictor.encoder.down_blocks.0.conv", ("downblock_1", "conv")),
        ("predictor.decoder.up_blocks.4.upsample", ("upblock_5", "interpolation")),
        ("predictor.decoder.concats.1", ("upblock_2", "concat")),
        ("predictor.encoder_down_blocks_1_conv", ("downblock_2", "conv")),  # flattened by a graph
        ("predictor.decoder_up_blocks_0_norm", ("upblock_1", "batchnorm")),
        ("predictor.encoder.down_blocks.2.conv.vertical", ("downblock_3", "conv.vertical")),
        ("predictor.encoder.down_blocks.2", ("downblock_3", "block")),
        ("predictor.middle.conv", None),
    ],
)
def test_hourglass_label(name, expected):
    assert hourglass_label(name) == expected


def test_op_family():
    assert [op_family(o) for o in ("conv.depthwise", "conv", "batchnorm")] == ["conv", "conv", "batchnorm"]


def test_students_keep_their_blocks_in_the_same_vocabulary():
    model = create_model("squeeze-unet-0.5")
    layout = layout_for(model)
    assert not layout.hourglass
    blocks = {block for block, _ in labels(model).values()}
    assert blocks == {"anti_alias", "heatmap_keypoint", "jacobian", "encoder", "decoder"}
    label = next(op for (b, op) in labels(model).values() if b == "encoder")
    assert not label.startswith("predictor")


@pytest.fixture(scope="module")
def profiles(variants):
    return {
        name: profile(
            variants[name], (1, 3, SIZE, SIZE), name=name, warmup=0, repeats=2, threads=1, show_progress=False
        ).to_json()  # as bench results hold it, which block_bars_data reads
        for name in ("teacher", "fx-int8", "dsconv")
    }


def test_profile_records_and_bars_pair_teacher_and_variants(profiles, variants):
    for name, record in profiles.items():
        assert [b["name"] for b in record["blocks"]] == BLOCK_ROWS, name
        assert {layer["block"] for layer in record["layers"]} == LAYER_BLOCKS, name
    fx_blocks = {b["name"]: b for b in profiles["fx-int8"]["blocks"]}
    teacher_blocks = {b["name"]: b for b in profiles["teacher"]["blocks"]}
    # FX calls its leaves, never the block containers: shapes come from the block's first and last layer
    for block in BLOCK_ROWS:
        assert fx_blocks[block]["input_shape"] == teacher_blocks[block]["input_shape"], block
        assert fx_blocks[block]["output_shape"] == teacher_blocks[block]["output_shape"], block
    assert teacher_blocks["downblock_1"]["input_shape"] == [3, 16, 16]
    assert teacher_blocks["upblock_2"]["input_shape"] == [64, 4, 4]
    assert teacher_blocks["hourglass"]["params"] == count_params(variants["teacher"].predictor)

    results = {"profiles": profiles}
    for variant in ("fx-int8", "dsconv"):
        data = block_bars_data(results, ["teacher", variant])
        assert list(data["teacher"]) == list(data[variant])
        assert set(data["teacher"]) == LAYER_BLOCKS
        assert all(data[variant][block] > 0 for block in HOURGLASS_BLOCKS)  # measured, not filled in
        layers = profiles[variant]["layers"]
        want = sum(layer["latency_ms"] for layer in layers if layer["block"] == "downblock_2")
        assert data[variant]["downblock_2"] == pytest.approx(want)


class WholePredictor(nn.Module):
    """Stands in for a predictor run as one piece (an ONNX Runtime session): a leaf module."""

    def forward(self, x):
        return x


def test_a_predictor_run_as_one_piece_is_the_hourglass_block(teacher):
    import copy

    model = copy.deepcopy(teacher)
    model.predictor = WholePredictor()
    layout = layout_for(model)
    assert not layout.hourglass and layout.blocks == [("hourglass", "predictor")]
    assert layout.layer_label("predictor", model.predictor) == ("hourglass", "wholepredictor")
    assert layout.block_members("hourglass", ["down", "predictor", "kp"]) == ["predictor"]


def test_forward_order():
    given = ["jacobian", "upblock_10", "upblock_2", "downblock_1", "heatmap_keypoint", "anti_alias", "encoder", "decoder"]
    assert forward_order(given) == [
        "anti_alias", "downblock_1", "upblock_2", "upblock_10", "encoder", "decoder", "heatmap_keypoint", "jacobian",
    ]  # fmt: skip
