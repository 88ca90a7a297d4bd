"""recover: fine-tuning a compressed reduced teacher back towards the chain's teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.data import FrameSource
from compressbench.distillation.finetune import agreement
from compressbench.errors import CompressbenchError
from compressbench.provenance import derive, load_model, save_variant
from tests.compression.swap_helpers import lively_teacher

SIZE = 64
FRAMES = FrameSource("synthetic", 16, 0, SIZE)
SHORT = {"steps": 20, "pool": 48, "batch": 8, "val_frames": 16, "val_every": 10, "lr": 1e-3}


def context(**extra) -> CompressionContext:
    return CompressionContext(
        FRAMES.calibration, input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False,
        calibration_stream=FRAMES.calibration_at, **extra,
    )  # fmt: skip


def run(teacher: nn.Module, chain: str, recover: dict | None = None, prune: dict | None = None, ctx=None):
    names = chain.split(",")
    given = {"recover": {**SHORT, **(recover or {})}, "prune": {"ratio": 0.5, **(prune or {})}}
    resolved = [get_method(n).resolve(given.get(n, {})) for n in names]
    return derive(teacher, names, resolved, ctx or context())


def calibrated_teacher(seed: int = 0) -> nn.Module:
    """The lively reduced teacher with BatchNorm statistics measured on synthetic frames, as a trained
    teacher's are (random statistics would make a student trained in BatchNorm's train mode drift
    away from a teacher that never used them)."""
    model = lively_teacher(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the frames
    model.train()
    with torch.no_grad():
        model(FrameSource("synthetic", 64, 9, SIZE).evaluation().images)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return calibrated_teacher()


@pytest.fixture(scope="module")
def recovered(teacher):
    return run(teacher, "prune,recover")


def held_out_akd(module: nn.Module, teacher: nn.Module) -> float:
    return agreement(module, teacher, FRAMES.evaluation().images)["akd_px"]


def test_recover_lowers_the_akd_of_a_pruned_detector_on_held_out_frames(teacher, recovered):
    pruned, final = recovered
    before, after = held_out_akd(pruned.module, teacher), held_out_akd(final.module, teacher)
    assert after < 0.8 * before, (before, after)
    report = final.stages[-1].report
    assert report["steps_run"] == 20 and report["seconds"] > 0
    assert [row["step"] for row in report["validation"]] == [0, 10, 20]
    assert report["val_akd_after_px"] < report["val_akd_before_px"] == report["validation"][0]["val_akd_px"]
    assert report["val_akd_after_px"] == min(row["val_akd_px"] for row in report["validation"][1:])


def test_recover_changes_weights_not_structure_and_leaves_its_input_alone(teacher, recovered):
    pruned, final = recovered
    shapes = {k: v.shape for k, v in pruned.module.state_dict().items()}
    assert {k: v.shape for k, v in final.module.state_dict().items()} == shapes
    assert final.stages[-1].structure == {}
    assert get_method("recover").rebuild(pruned.module, {}, {}) is pruned.module
    # the pruned stage's module is not the trained one
    assert any(not torch.equal(a, b) for a, b in zip(pruned.module.state_dict().values(), final.module.state_dict().values()))


def test_recover_is_deterministic_by_seed(teacher):
    a = run(teacher, "prune,recover", {"steps": 3, "val_every": 3})[-1].module.state_dict()
    b = run(teacher, "prune,recover", {"steps": 3, "val_every": 3})[-1].module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_recover_stages_in_one_context_label_their_pool_once_with_the_same_result(teacher, monkeypatch):
    from compressbench.distillation import finetune as finetune_module

    labelled = []
    original = finetune_module.label_pool
    monkeypatch.setattr(finetune_module, "label_pool", lambda *a: labelled.append(1) or original(*a))
    shared = context()
    first = run(teacher, "prune,recover", {"steps": 3, "val_every": 3}, ctx=shared)[-1].module.state_dict()
    again = run(teacher, "prune,recover", {"steps": 3, "val_every": 3}, ctx=shared)[-1].module.state_dict()
    assert len(labelled) == 1  # the second stage reused the first one's pool
    fresh = run(teacher, "prune,recover", {"steps": 3, "val_every": 3})[-1].module.state_dict()
    assert len(labelled) == 2  # another context labels its own
    assert all(torch.equal(first[k], again[k]) and torch.equal(first[k], fresh[k]) for k in first)


def test_a_recovered_variant_saves_and_reloads_with_identical_outputs(tmp_path, recovered):
    final = recovered[-1]
    loaded = load_model(save_variant(final, tmp_path / "recovered.pt"))
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = final.module(x), loaded(x)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_teacher_defaults_to_the_chains_input_and_can_be_chosen(teacher):
    other = lively_teacher(seed=5)
    chosen = run(teacher, "recover", {"steps": 2, "val_every": 2}, ctx=context(teacher=other))[-1]
    default = run(teacher, "recover", {"steps": 2, "val_every": 2})[-1]
    # recovering the teacher towards itself starts at zero disagreement; towards another it does not
    assert default.stages[0].report["val_akd_before_px"] == 0.0
    assert chosen.stages[0].report["val_akd_before_px"] > 1.0


def test_recover_after_int8_is_refused_with_the_fix(teacher):
    with pytest.raises(CompressbenchError, match="put recover before quantize"):
        run(teacher, "quantize,recover")


@pytest.mark.parametrize(
    "given, message",
    [
        ({"steps": 0}, "steps must be positive"),
        ({"loss": "l9"}, "unknown loss 'l9'"),
        ({"device": "tpu"}, "must be cpu or cuda"),
        ({"patience": -1}, "patience must be zero"),
        ({"warmup": -1}, "warmup must be zero"),
        ({"precision": "fp16"}, "unknown precision 'fp16'"),
        ({"augment": "mirror"}, "unknown augment 'mirror'; choose one of: none, flip, colour, warp, full"),
        ({"augment_per": "step"}, "unknown augment_per 'step'; choose one of: batch, pool"),
        ({"refresh": -1}, r"refresh must be zero \(one fixed pool\) or positive, got -1"),
        ({"refresh": "often"}, "option refresh expects int, got 'often'"),
    ],
)
def test_bad_options_are_one_sentence(given, message):
    with pytest.raises(CompressbenchError, match=message):
        get_method("recover").resolve(given)


def test_batch_larger_than_the_pool_is_refused(teacher):
    with pytest.raises(CompressbenchError, match="batch 16 is larger than pool 8"):
        run(teacher, "recover", {"batch": 16, "pool": 8})


def test_a_warmup_longer_than_the_steps_is_refused(teacher):
    with pytest.raises(CompressbenchError, match="warmup 5 is longer than steps 3"):
        run(teacher, "recover", {**SHORT, "steps": 3, "warmup": 5})


def test_a_warmup_reaches_the_training(teacher):
    plain = run(teacher, "prune,recover", {"steps": 2, "val_every": 2})[-1].module.state_dict()
    warmed = run(teacher, "prune,recover", {"steps": 2, "val_every": 2, "warmup": 2})[-1].module.state_dict()
    # the first step runs at half the lr: the weights differ (Adam's first update is lr-sized)
    assert any(not torch.equal(plain[k], warmed[k]) for k in plain if plain[k].is_floating_point())


def test_channels_last_training_is_the_same_math_and_hands_back_nchw_weights(teacher, monkeypatch):
    from compressbench.distillation import finetune as finetune_module

    layouts = []
    original = finetune_module.train

    def spy(distiller, *args, **kwargs):
        convs = [p for p in distiller.student.parameters() if p.dim() == 4 and p.shape[-1] > 1]
        layouts.append(all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs))
        return original(distiller, *args, **kwargs)

    monkeypatch.setattr(finetune_module, "train", spy)
    slow = {"steps": 3, "val_every": 3, "lr": 1e-5}
    nhwc = run(teacher, "prune,recover", slow)[-1].module
    nchw = run(teacher, "prune,recover", {**slow, "channels_last": False})[-1].module
    assert layouts == [True, False]  # trained in NHWC only when asked
    assert all(p.is_contiguous() for p in nhwc.parameters())  # measured as any other variant is
    # only the float summation order differs; Adam's steps are about lr in size whatever the gradient,
    # so a rounding-level gradient can move a weight by up to 2 lr per step one way or the other
    assert max((a - b).abs().max().item() for a, b in zip(nhwc.parameters(), nchw.parameters())) <= 2 * 3 * 1e-5
    assert agreement(nhwc, nchw, FRAMES.evaluation().images)["akd_px"] < 0.01


def test_bf16_training_recovers_too_and_differs_from_fp32(teacher, recovered):
    pruned, fp32 = recovered
    bf16 = run(teacher, "prune,recover", {"precision": "bf16"})[-1]
    before = held_out_akd(pruned.module, teacher)
    assert held_out_akd(bf16.module, teacher) < 0.8 * before
    assert all(p.dtype == torch.float32 for p in bf16.module.parameters())  # autocast, not a bf16 model
    assert any(not torch.equal(a, b) for a, b in zip(fp32.module.parameters(), bf16.module.parameters()))


def test_quantize_after_recover_saves_and_reloads_with_identical_outputs(tmp_path, teacher):
    names = ["prune", "recover", "quantize"]
    given = {"recover": {**SHORT, "steps": 2, "val_every": 2}, "quantize": {"backend": "fx", "calib": 4}}
    resolved = [get_method(n).resolve(given.get(n, {})) for n in names]
    final = derive(teacher, names, resolved, context())[-1]
    assert final.int8 and [s.method for s in final.stages] == names
    loaded = load_model(save_variant(final, tmp_path / "int8.pt"))
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want, got = final.module(x), loaded(x)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_too_few_user_frames_name_the_recover_options_to_lower(teacher, tmp_path):
    import imageio.v3 as iio

    for index in range(6):
        iio.imwrite(tmp_path / f"{index}.png", (torch.rand(SIZE, SIZE, 3) * 255).to(torch.uint8).numpy())
    frames = FrameSource(str(tmp_path), 2, 0, SIZE)
    ctx = CompressionContext(frames.calibration, input_shape=(1, 3, SIZE, SIZE), seed=0, show_progress=False)
    with pytest.raises(CompressbenchError, match=r"val_frames \+ pool = 64 calibration frames; lower them"):
        run(teacher, "recover", ctx=ctx)


@pytest.mark.parametrize(
    ("steps", "lr", "val_every"),
    [(20, 5e-4, 20), (300, 5e-4, 100), (3000, 2.5e-4, 150), (30000, 1.25e-4, 1500)],
)
def test_the_default_schedule_scales_with_the_steps(steps, lr, val_every):
    from compressbench.compression.recover import resolved_schedule

    options = get_method("recover").resolve({"steps": steps})
    assert options["lr"] is None and options["val_every"] is None  # "scaled with the steps", resolved when run
    schedule = resolved_schedule(options)
    assert schedule["lr"] == pytest.approx(lr, rel=1e-12)
    assert schedule["val_every"] == val_every  # never more than the steps


def test_a_given_lr_and_spacing_are_kept_and_what_ran_is_reported(teacher, recovered):
    from compressbench.compression.recover import resolved_schedule

    assert resolved_schedule({"steps": 3000, "lr": 1e-3, "val_every": 7}) == {"lr": 1e-3, "val_every": 7}
    report = recovered[1].stages[-1].report
    assert (report["lr"], report["val_every"]) == (SHORT["lr"], SHORT["val_every"])
    _, default = run(teacher, "prune,recover", recover={"lr": None, "val_every": None})
    assert (default.stages[-1].report["lr"], default.stages[-1].report["val_every"]) == (5e-4, 20)


# -- recovery that generalises: augmented batches and a refreshed pool -------------------------------


def test_augmented_batches_are_labelled_by_the_teacher_one_batch_per_step(teacher, monkeypatch):
    """With augment, nothing is labelled up front: every step's batch is the pool's frames picked as
    a fixed pool's run picks them, augmented with the step's own draws, and its labels are exactly
    the teacher's outputs for those augmented frames."""
    from compressbench.data.augment import augment_frames
    from compressbench.distillation import finetune as finetune_module
    from compressbench.distillation.losses import Distiller
    from compressbench.training.teacher import batch_seed

    calls = []
    original = Distiller.teacher_targets
    monkeypatch.setattr(Distiller, "teacher_targets", lambda self, x: calls.append((x, original(self, x))) or calls[-1][1])
    options = {"steps": 3, "val_every": 3, "augment": "full"}
    run(teacher, "prune,recover", options)
    assert len(calls) == 3  # one labelling per step, no pool labelled before training
    frames = FRAMES.calibration(SHORT["val_frames"] + SHORT["pool"])[SHORT["val_frames"] :]
    pool = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    for index, (images, targets) in enumerate(calls):
        picks = torch.randint(SHORT["pool"], (SHORT["batch"],), generator=torch.Generator().manual_seed(
            batch_seed(0, index, finetune_module.DISTILL_FRAMES)))  # fmt: skip
        draws = torch.Generator().manual_seed(batch_seed(0, index, finetune_module.AUGMENT_DRAWS))
        assert torch.equal(images, augment_frames(pool[picks].float() / 255.0, "full", draws))
        with torch.no_grad():
            want = teacher(images)
        assert torch.equal(targets["value"], want["value"]) and torch.equal(targets["jacobian"], want["jacobian"])


def test_pool_augmentation_labels_each_pool_once_and_trains_on_exactly_those_frames(teacher, monkeypatch):
    """augment_per=pool: the teacher labels one augmented pool before training and one per refresh
    (7 steps, refresh 3: pools 0, 1, 2), in POOL_CHUNK pieces, never a batch in a step; pool r is
    its frames augmented once with pool r's own draws and rounded to 8 bits, and every batch is that
    pool's frames picked as a fixed pool's run picks them, with the labels the teacher gave them."""
    from compressbench.data.augment import augment_frames
    from compressbench.distillation import finetune as finetune_module
    from compressbench.distillation.losses import Distiller
    from compressbench.training.teacher import batch_seed

    calls, steps = [], []
    original = Distiller.teacher_targets
    monkeypatch.setattr(Distiller, "teacher_targets", lambda self, x: calls.append(x.clone()) or original(self, x))
    real_batch = finetune_module.LabelledPool.batch
    monkeypatch.setattr(finetune_module.LabelledPool, "batch", lambda self, picks: steps.append(
        (self, picks)) or real_batch(self, picks))  # fmt: skip
    final = run(teacher, "prune,recover", {"steps": 7, "val_every": 7, "augment": "full", "augment_per": "pool",
                                           "refresh": 3})[-1]  # fmt: skip
    report = final.stages[-1].report
    assert (report["augment"], report["augment_per"], report["pools_used"]) == ("full", "pool", 3)
    assert [len(c) for c in calls] == [32, 16] * 3  # a pool of 48 in POOL_CHUNK (32) pieces
    assert len(steps) == 7 and len({id(pool) for pool, _ in steps}) == 3
    first = (FRAMES.calibration_at(SHORT["val_frames"], SHORT["pool"]).clamp(0, 1) * 255).round().to(torch.uint8)
    draws = torch.Generator().manual_seed(batch_seed(0, 0, finetune_module.POOL_AUGMENT_DRAWS))
    pieces = [augment_frames(first[i : i + 32].float() / 255.0, "full", draws) for i in (0, 32)]
    want = (torch.cat(pieces).clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(torch.cat(calls[:2]), want.float() / 255.0) and not torch.equal(want, first)
    pool0, picks = steps[0]
    assert torch.equal(pool0.images, want)
    assert torch.equal(picks, torch.randint(SHORT["pool"], (SHORT["batch"],), generator=torch.Generator().manual_seed(
        batch_seed(0, 0, finetune_module.DISTILL_FRAMES))))  # fmt: skip
    with torch.no_grad():
        assert torch.equal(pool0.targets["value"], teacher(want.float() / 255.0)["value"])
    again = run(teacher, "prune,recover", {"steps": 7, "val_every": 7, "augment": "full", "augment_per": "pool",
                                           "refresh": 3})[-1]  # fmt: skip
    assert all(torch.equal(x, y) for x, y in zip(final.module.state_dict().values(), again.module.state_dict().values()))


def test_pool_augmentation_costs_a_fixed_pools_step_and_bad_values_are_refused(teacher):
    from compressbench.distillation.finetune import FinetuneSettings, finetune, labels_in_step

    assert labels_in_step(FinetuneSettings(pool=0)) and labels_in_step(FinetuneSettings(pool=8, augment="flip"))
    assert not labels_in_step(FinetuneSettings(pool=8, augment="flip", augment_per="pool"))
    assert not labels_in_step(FinetuneSettings(pool=8, refresh=4))
    images = FRAMES.calibration(8)
    with pytest.raises(CompressbenchError, match="unknown augment_per 'step'; choose one of: batch, pool"):
        finetune(teacher, teacher, FinetuneSettings(augment="flip", augment_per="step", size=SIZE), images)
    with pytest.raises(CompressbenchError, match="augment_per=pool needs a pool"):
        finetune(teacher, teacher, FinetuneSettings(augment="flip", augment_per="pool", size=SIZE), images)


def test_a_fresh_pool_holds_new_frames_at_every_refresh_and_the_same_ones_in_every_run():
    from compressbench.distillation.finetune import RefreshingPool

    def stream() -> RefreshingPool:
        return RefreshingPool(FRAMES.calibration_at, 16, FRAMES.calibration(16))

    first, second = stream(), stream()
    pools = [first.at(r).clone() for r in range(3)]
    assert all(p.dtype == torch.uint8 and p.shape == (16, 3, SIZE, SIZE) for p in pools)
    assert not any(torch.equal(a, b) for i, a in enumerate(pools) for b in pools[i + 1 :])  # different per refresh
    assert all(torch.equal(second.at(r), pools[r]) for r in range(3))  # the same sequence in another run
    assert torch.equal(pools[2], (FRAMES.calibration_at(32, 16) * 255).round().to(torch.uint8))
    assert first.distinct == 48 and torch.equal(first.at(1), pools[1])  # a restart reads the stream again


def test_a_finite_stream_wraps_round_to_its_first_frame():
    from compressbench.distillation.finetune import RefreshingPool

    frames = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2)
    pool = RefreshingPool(lambda start, count: frames[start : start + count], 4, frames[:4])
    firsts = [int(pool.at(r)[:, 0, 0, 0].tolist()[0]) for r in range(4)]
    assert [pool.at(r)[:, 0, 0, 0].tolist() for r in (2, 3)] == [[8, 9, 0, 1], [2, 3, 4, 5]]
    assert firsts == [0, 4, 8, 2] and pool.distinct == 10


def test_a_refreshed_and_augmented_recovery_is_reproducible_and_recovers(teacher, recovered):
    options = {"augment": "full", "refresh": 5}
    pruned, a = run(teacher, "prune,recover", options)
    b = run(teacher, "prune,recover", options)[-1]
    assert all(torch.equal(x, y) for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()))
    report = a.stages[-1].report
    assert (report["augment"], report["refresh"], report["pools_used"]) == ("full", 5, 4)
    assert report["val_akd_after_px"] < report["val_akd_before_px"]
    assert held_out_akd(a.module, teacher) < 0.8 * held_out_akd(pruned.module, teacher)
    # another setting trains other weights
    fixed = recovered[-1].module.state_dict()
    assert any(not torch.equal(fixed[k], v) for k, v in a.module.state_dict().items() if v.is_floating_point())


def test_a_refresh_no_sooner_than_the_last_step_is_the_fixed_pool(teacher):
    """refresh only ever adds pools: its first pool, picks and labels are the fixed pool's."""
    options = {"steps": 6, "val_every": 3}
    fixed = run(teacher, "prune,recover", options)[-1].module.state_dict()  # here: in this test's torch state
    late = run(teacher, "prune,recover", {**options, "refresh": 6})[-1]
    assert late.stages[-1].report["pools_used"] == 1
    assert all(torch.equal(fixed[k], v) for k, v in late.module.state_dict().items())


@pytest.mark.parametrize("augment", ["flip", "full"])
def test_a_20_step_augmented_recovery_lowers_the_loss_and_the_akd(teacher, augment):
    pruned, final = run(teacher, "prune,recover", {"augment": augment})
    curve = final.stages[-1].report["validation"]
    assert [row["step"] for row in curve] == [0, 10, 20]
    assert curve[2]["loss"] < curve[1]["loss"]  # mean training loss over steps 11-20 against 1-10
    assert curve[2]["val_akd_px"] < curve[0]["val_akd_px"]
    assert held_out_akd(final.module, teacher) < held_out_akd(pruned.module, teacher)


def test_the_shared_loop_augments_streamed_batches_too_and_refuses_a_refresh_without_a_pool(teacher):
    """distill's path (no pool: fresh frames every step, labelled in the step) takes augment as well."""
    from compressbench.data.augment import augment_frames
    from compressbench.distillation import finetune as finetune_module
    from compressbench.distillation.finetune import FinetuneSettings, finetune
    from compressbench.training.teacher import batch_seed

    images = FRAMES.calibration(8)
    plain = finetune_module._batch_source(FinetuneSettings(batch=4, size=SIZE), images)(3)
    flipped = finetune_module._batch_source(FinetuneSettings(batch=4, size=SIZE, augment="flip"), images)(3)
    draws = torch.Generator().manual_seed(batch_seed(0, 3, finetune_module.AUGMENT_DRAWS))
    assert torch.equal(flipped, augment_frames(plain, "flip", draws)) and not torch.equal(flipped, plain)
    with pytest.raises(CompressbenchError, match="refresh needs a pool"):
        finetune(teacher, teacher, FinetuneSettings(refresh=5, size=SIZE), images)
    with pytest.raises(CompressbenchError, match="unknown augment 'tilt'"):
        finetune(teacher, teacher, FinetuneSettings(augment="tilt", size=SIZE), images)
