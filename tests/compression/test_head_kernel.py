"""heads: the 7x7 keypoint and jacobian heads as smaller convolutions with the same output grid."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.compression.head_kernel import CroppedConv2d, crop_and_padding
from compressbench.data import FrameSource, frames_for
from compressbench.distillation.finetune import agreement
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher
from compressbench.profiling import count_params
from compressbench.provenance import derive, load_model, save_variant
from compressbench.runtimes import prepare
from tests.compression.swap_helpers import REDUCED_PARAMS, frames, lively_teacher, max_output_difference, swap
from tests.compression.test_recover import calibrated_teacher

METHOD = get_method("heads")
OUTPUTS = ("value", "jacobian", "heatmap")
# the reduced teacher's heads read 8 + 3 = 11 channels: kp 11 -> 10, jacobian 11 -> 40, 7x7, with bias
KP_7, JACOBIAN_7 = 11 * 10 * 49 + 10, 11 * 40 * 49 + 40
SIZE = 64
FRAMES = FrameSource("synthetic", 16, 0, SIZE)
FITTING = CompressionContext(FRAMES.calibration, input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False)


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


def ringless(model: nn.Module, kernel: int) -> nn.Module:
    """``model`` with each head's weights outside the centre ``kernel`` window zeroed (a 7x7 head
    that a ``kernel``-wide one represents exactly)."""
    start = (7 - kernel) // 2
    with torch.no_grad():
        for head in (model.kp, model.jacobian):
            mask = torch.zeros_like(head.weight)
            mask[:, :, start : start + kernel, start : start + kernel] = 1
            head.weight.mul_(mask)
    return model


@pytest.mark.parametrize(
    ("options", "kp", "jacobian"),
    [
        ({}, 11 * 10 * 25 + 10, 11 * 40 * 25 + 40),  # default: kernel 5
        ({"kernel": 3}, 11 * 10 * 9 + 10, 11 * 40 * 9 + 40),
        ({"kernel": 1}, 11 * 10 + 10, 11 * 40 + 40),
        ({"which": "kp"}, 11 * 10 * 25 + 10, JACOBIAN_7),
        ({"which": "jacobian"}, KP_7, 11 * 40 * 25 + 40),
    ],
)
def test_parameter_counts_are_the_hand_formula(teacher, options, kp, jacobian):
    variant = swap(teacher, "heads", init="centre", **options)
    assert count_params(variant.module.kp) == kp and count_params(variant.module.jacobian) == jacobian
    report = variant.stages[0].report
    assert report["params_before"] == REDUCED_PARAMS == count_params(teacher)
    assert report["params_after"] == REDUCED_PARAMS - KP_7 - JACOBIAN_7 + kp + jacobian == count_params(variant.module)


@pytest.mark.parametrize(("old_kernel", "old_padding", "kernel", "expected"), [
    (7, 0, 3, (2, 0)), (7, 0, 5, (1, 0)), (7, 0, 1, (3, 0)), (7, 3, 3, (0, 1)), (7, 1, 3, (1, 0)), (7, 3, 1, (0, 0)),
])  # fmt: skip
def test_crop_comes_off_the_padding_first(old_kernel, old_padding, kernel, expected):
    assert crop_and_padding(old_kernel, old_padding, kernel) == expected


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("init", ["centre", "fit"])
def test_a_head_without_its_outer_ring_is_reproduced_exactly(kernel, pad, init):
    # the centre window of a 7x7 kernel whose ring is zero is the whole kernel: the same outputs,
    # heatmap grid included, for FOMM's unpadded heads and for padded ones
    config = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3, pad=pad)
    model = ringless(lively_teacher_with(config), kernel)
    variant = derive(model, "heads", [METHOD.resolve({"kernel": kernel, "init": init})], FITTING)[-1]
    x = frames(2, 64, seed=3)
    with torch.no_grad():
        got, want = variant.module(x), model(x)
    assert {k: got[k].shape for k in OUTPUTS} == {k: want[k].shape for k in OUTPUTS}
    assert max(max_output_difference(got, want).values()) < 1e-4
    for head in variant.stages[0].report["heads"].values():
        assert head["weight_kept"] == pytest.approx(1.0) and head["output_relative_error"] < 1e-5


def test_the_fit_agrees_with_the_old_heads_better_than_the_centre_window(teacher):
    # least squares over the calibration frames' feature maps: on those maps no k x k head is closer
    fitted = derive(teacher, "heads", [METHOD.resolve({"init": "fit"})], FITTING)[-1].stages[0].report["heads"]
    centre = derive(teacher, "heads", [METHOD.resolve({"init": "centre"})], FITTING)[-1].stages[0].report["heads"]
    for name in ("kp", "jacobian"):
        assert fitted[name]["output_relative_error"] < centre[name]["output_relative_error"]


def test_the_fit_needs_calibration_frames(teacher):
    with pytest.raises(CompressbenchError, match=r"needs frames"):
        swap(teacher, "heads")


def lively_teacher_with(config: DetectorConfig) -> nn.Module:
    torch.manual_seed(0)
    model = build_teacher(config).eval()
    with torch.no_grad():
        model.jacobian.weight.normal_(0, 0.01)
    return model


def test_centre_init_copies_the_window_and_the_bias(teacher):
    variant = swap(teacher, "heads", kernel=3, init="centre")
    for name in ("kp", "jacobian"):
        old, new = getattr(teacher, name), getattr(variant.module, name)
        assert isinstance(new, CroppedConv2d) and new.crop == 2 and new.padding == (0, 0)
        assert torch.equal(new.weight, old.weight[:, :, 2:5, 2:5]) and torch.equal(new.bias, old.bias)
        kept = float(old.weight[:, :, 2:5, 2:5].abs().sum() / old.weight.abs().sum())
        assert variant.stages[0].report["heads"][name]["weight_kept"] == pytest.approx(kept)


def test_rebuild_from_the_saved_structure_gives_identical_outputs(teacher, tmp_path):
    variant = swap(teacher, "heads", kernel=3, init="centre")
    with torch.no_grad():  # weights other than the init, so the state dict must arrive
        variant.module.kp.weight.add_(0.01 * torch.randn(variant.module.kp.weight.shape))
    assert variant.stages[0].structure == {"kernel": 3, "heads": ["kp", "jacobian"]}
    loaded = load_model(save_variant(variant, tmp_path / "heads.pt"))
    x = frames(2, 64, seed=6)
    with torch.no_grad():
        expected, got = variant.module(x), loaded(x)
    assert all(torch.equal(expected[k], got[k]) for k in OUTPUTS)
    assert type(loaded.kp) is CroppedConv2d and loaded.kp.crop == 2 and loaded.kp.kernel_size == (3, 3)


def test_after_pruning_the_heads_take_the_pruned_width_and_reload(teacher, tmp_path):
    resolved = [get_method("prune").resolve({"ratio": 0.5}), METHOD.resolve({}), get_method("exact").resolve({})]
    pruned, headed, folded = derive(teacher, ["prune", "heads", "exact"], resolved, FITTING)
    assert headed.module.kp.in_channels == pruned.module.kp.in_channels < 11
    assert headed.module.kp.kernel_size == (5, 5)
    loaded = load_model(save_variant(folded, tmp_path / "prune-heads.pt"))
    x = frames(2, 64, seed=2)
    with torch.no_grad():
        assert all(torch.equal(folded.module(x)[k], loaded(x)[k]) for k in OUTPUTS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernel": 4}, r"^heads: kernel must be an odd size of 1 or more .*got 4$"),
        ({"kernel": 0}, r"^heads: kernel must be an odd size .*got 0$"),
        ({"which": "down"}, r"^heads: unknown which 'down'; choose one of: both, kp, jacobian$"),
        ({"init": "svd"}, r"^heads: unknown init 'svd'; choose one of: fit, centre, random$"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(CompressbenchError, match=message) as caught:
        METHOD.resolve(options)
    assert "\n" not in str(caught.value)


def test_models_the_method_cannot_shrink_are_refused(teacher):
    once = swap(teacher, "heads", init="centre").module
    with pytest.raises(CompressbenchError, match=r"^heads: the kp head is already 5x5; apply heads once$"):
        swap(once, "heads")
    with pytest.raises(CompressbenchError, match=r"^heads: kernel 7 is not smaller than the kp head's 7$"):
        swap(teacher, "heads", kernel=7)
    no_jacobian = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3, estimate_jacobian=False))
    assert swap(no_jacobian.eval(), "heads", init="centre").stages[0].structure["heads"] == ["kp"]
    with pytest.raises(CompressbenchError, match=r"^heads: the model has no jacobian head"):
        swap(no_jacobian.eval(), "heads", which="jacobian")
    with pytest.raises(CompressbenchError, match=r"^heads: the saved structure is damaged"):
        METHOD.rebuild(teacher, {}, {"kernel": 3})
    with pytest.raises(CompressbenchError, match=r"^heads: the model has no keypoint head at \.kp"):
        swap(nn.Sequential(nn.Conv2d(3, 3, 3)), "heads")


SHORT = {"steps": 20, "pool": 48, "batch": 8, "val_frames": 16, "val_every": 10, "lr": 1e-3}


def test_a_short_recover_trains_the_smaller_heads_towards_the_teacher():
    teacher = calibrated_teacher()
    context = CompressionContext(FRAMES.calibration, input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False)
    resolved = [METHOD.resolve({"init": "random"}), get_method("recover").resolve({**SHORT, "steps": 40})]
    headed, recovered = derive(teacher, ["heads", "recover"], resolved, context)
    held_out = FRAMES.evaluation().images
    before = agreement(headed.module, teacher, held_out)["akd_px"]
    after = agreement(recovered.module, teacher, held_out)["akd_px"]
    assert after < 0.8 * before, (before, after)
    assert not torch.equal(recovered.module.kp.weight, headed.module.kp.weight)  # gradients reach the heads
    assert not torch.equal(recovered.module.jacobian.weight, headed.module.jacobian.weight)


@pytest.mark.parametrize(("runtime", "precision"), [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")])
def test_a_heads_variant_runs_on_the_onnx_runtimes(teacher, runtime, precision):
    module = swap(teacher, "heads", init="centre").module
    batch, held_out = frames(2, SIZE, seed=1), frames_for("synthetic", 8, split="test", seed=0, size=SIZE).images
    calibration = frames_for("synthetic", 16, split="train", seed=0, size=SIZE).images
    prepared = prepare(runtime, module, batch, 1, precision, calibration)
    out = prepared.outputs(held_out)
    with torch.inference_mode():
        reference = module(held_out)
    if precision == "fp32":
        for key in OUTPUTS:
            torch.testing.assert_close(out[key], reference[key], atol=1e-4, rtol=0)
    else:
        assert out["heatmap"].shape == reference["heatmap"].shape
        assert prepared.record.precision_used == "int8"
