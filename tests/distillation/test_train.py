"""Distillation training on a reduced teacher and 64x64 frames: learning, exact resume, early
stopping, saving, initialisations and bad options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compressbench.api import save
from compressbench.distillation.finetune import agreement
from compressbench.distillation.train import DistillOptions, distill, save_distilled, validation_frames
from compressbench.errors import CompressbenchError
from compressbench.models import build_teacher
from compressbench.provenance import load_model
from tests.conftest import REDUCED

# erfnet and friends run on a 16x16 predictor input (64x64 frames); lednet needs 256x256
STUDENT = "erfnet-0.5"


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "small-teacher.pt"
    save(build_teacher(REDUCED), path)
    return path


def options(teacher_file, **changes) -> DistillOptions:
    settings = dict(
        teacher=str(teacher_file), student=STUDENT, steps=4, batch=2, val_frames=4, eval_frames=4,
        val_every=2, size=64, seed=0, progress=False, patience=None,
        lr_schedule="constant",  # a half run then resumed follows the full run's steps only at a constant rate
    )  # fmt: skip
    return DistillOptions(**{**settings, **changes})


def student_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, size: int = 64) -> bool:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out_a, out_b = a.eval()(x), b.eval()(x)
    return all(torch.equal(out_a[key], out_b[key]) for key in ("value", "jacobian", "heatmap"))


def test_training_lowers_the_loss(teacher_file):
    _, result, _ = distill(options(teacher_file, steps=20, val_every=2))
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 10 and [row["step"] for row in result.history] == list(range(2, 21, 2))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    assert all(row["akd_px"] >= 0 and row["jacobian_error"] >= 0 for row in result.history)


def test_resume_continues_bit_identically(teacher_file, tmp_path):
    # l3 on squeeze-unet: its 4x4 encoder output needs the trained adapter, which the checkpoint must carry too
    common = dict(student="squeeze-unet-0.5", loss="l3", val_every=3)
    straight, result, _ = distill(options(teacher_file, steps=6, checkpoint=tmp_path / "full.pt", **common))
    straight_last = torch.load(tmp_path / "full.pt", weights_only=True)["last"]
    distill(options(teacher_file, steps=3, checkpoint=tmp_path / "half.pt", **common))
    resumed, resumed_result, _ = distill(
        options(teacher_file, steps=6, checkpoint=tmp_path / "resumed.pt", resume=tmp_path / "half.pt", **common)
    )
    resumed_last = torch.load(tmp_path / "resumed.pt", weights_only=True)["last"]
    assert any(name.startswith("adapter.") for name in straight_last)
    assert straight_last.keys() == resumed_last.keys()
    assert all(torch.equal(straight_last[name], resumed_last[name]) for name in straight_last)
    a, b = student_state(straight), student_state(resumed)  # the best weights each run returns
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert resumed_result.history == result.history and resumed_result.step == 6


def test_same_seed_same_student_other_seed_another(teacher_file):
    first = student_state(distill(options(teacher_file, steps=2))[0])
    again = student_state(distill(options(teacher_file, steps=2))[0])
    other = student_state(distill(options(teacher_file, steps=2, seed=1))[0])
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_early_stopping_keeps_the_best_weights(teacher_file):
    student, result, _ = distill(options(teacher_file, student="edanet-0.5", steps=40, val_every=1, patience=2))
    assert result.stopped_early and result.step < 40 and len(result.history) == result.step
    values = [row["akd_px"] for row in result.history]
    assert result.best_value == min(values) and values.index(min(values)) + 1 == result.best_step
    assert min(values[-2:]) >= result.best_value  # the two validations that ran out the patience
    teacher = load_model(teacher_file)
    measured = agreement(student, teacher, validation_frames(options(teacher_file)))
    assert measured["akd_px"] == pytest.approx(result.best_value, abs=1e-5)


@pytest.mark.parametrize(
    "changes, base, stages",
    [
        (dict(student=STUDENT, loss="l2"), "registered-model", ["distill"]),
        (dict(method="dsconv", init="svd", loss="l3"), "registered-model", ["dsconv", "distill"]),
        (dict(method="asym", init="random"), "registered-model", ["asym", "distill"]),
    ],
)
def test_saved_student_reloads_with_identical_outputs(teacher_file, tmp_path, changes, base, stages):
    student, _, provenance = distill(options(teacher_file, steps=2, **changes))
    assert provenance.base.kind == base and [s.method for s in provenance.stages] == stages
    path = save_distilled(student, provenance, tmp_path / "student.pt", {"note": "test"})
    assert outputs_equal(student, load_model(path))


def test_student_from_a_saved_model_file_round_trips(teacher_file, tmp_path):
    # the reduced teacher file itself as the student: a registered model with its own config
    student, _, provenance = distill(options(teacher_file, student=str(teacher_file), steps=2))
    assert provenance.base.kind == "registered-model" and provenance.base.args["config"]["block_expansion"] == 8
    assert outputs_equal(student, load_model(save_distilled(student, provenance, tmp_path / "a.pt", {})))


def test_svd_init_starts_close_to_the_teacher(teacher_file):
    # dsconv with the closed-form init begins near the teacher; a random init does not
    svd = distill(options(teacher_file, method="dsconv", init="svd", steps=1, val_every=1, lr=1e-12))[1]
    random = distill(options(teacher_file, method="dsconv", init="random", steps=1, val_every=1, lr=1e-12))[1]
    assert svd.history[0]["jacobian_error"] < random.history[0]["jacobian_error"]


def test_transfer_init_pretrains_on_landmarks(teacher_file):
    plain = student_state(distill(options(teacher_file, steps=1, val_every=1, lr=1e-12))[0])
    transferred = student_state(distill(options(teacher_file, steps=1, val_every=1, lr=1e-12, init="transfer", transfer_steps=2))[0])
    assert plain.keys() == transferred.keys()
    assert not all(torch.equal(plain[name], transferred[name]) for name in plain)


def test_user_frames_need_no_labels(teacher_file, tmp_path):
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    for index in range(11):
        imageio.imwrite(tmp_path / f"frame{index:02d}.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    _, result, _ = distill(options(teacher_file, data=str(tmp_path), eval_frames=3, val_frames=4))
    assert result.step == 4 and len(result.history) == 2
    with pytest.raises(CompressbenchError, match="has 11 frames"):
        distill(options(teacher_file, data=str(tmp_path), eval_frames=5, val_frames=6))
    _, pooled, _ = distill(options(teacher_file, data=str(tmp_path), eval_frames=3, val_frames=4, pool=4))
    assert pooled.step == 4
    with pytest.raises(CompressbenchError, match="--pool 5 asks for more frames than the 4 training frames"):
        distill(options(teacher_file, data=str(tmp_path), eval_frames=3, val_frames=4, pool=5))


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (dict(student="nope"), "unknown student 'nope'; known: edanet, erfnet"),
        (dict(loss="l4"), "l4"),
        (dict(steps=0), "--steps must be a positive integer"),
        (dict(init="svd"), "--init svd applies to a teacher made into a student with --method"),
        (dict(method="prune", init="svd"), "--method prune has none"),
        (dict(method="dsconv", width=0.5), "--width applies to the student families"),
        (dict(student="lednet-0.5"), "cannot run on 64x64 frames"),
        (dict(method="quantize"), "ends in int8"),
    ],
)
def test_bad_options_are_one_clear_error(teacher_file, changes, fragment):
    with pytest.raises(CompressbenchError, match=None) as caught:
        distill(options(teacher_file, **changes))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_resume_of_another_students_checkpoint_is_refused(teacher_file, tmp_path):
    distill(options(teacher_file, steps=2, checkpoint=tmp_path / "ck.pt"))
    with pytest.raises(CompressbenchError) as caught:
        distill(options(teacher_file, student="esnet-0.5", steps=4, resume=tmp_path / "ck.pt"))
    assert f"student {STUDENT} there, esnet-0.5 here" in str(caught.value)


def test_pool_labels_are_the_teachers_outputs_on_the_stored_frames(teacher_file):
    from compressbench.distillation.finetune import label_pool
    from compressbench.distillation.losses import Distiller

    teacher = load_model(str(teacher_file)).eval()
    opts = options(teacher_file, pool=5, loss="l2")
    distiller = Distiller(teacher, load_model("erfnet-0.5", weights="random"), "l2")
    pool = label_pool(distiller, opts, None)
    assert len(pool) == 5 and pool.images.dtype == torch.uint8 and pool.images.shape == (5, 3, 64, 64)
    assert sorted(pool.targets) == ["heatmap", "jacobian", "value"]  # what L2 compares, nothing more
    with torch.no_grad():
        want = teacher(pool.images.float() / 255.0)
    assert all(torch.equal(pool.targets[key], want[key]) for key in pool.targets)
    again = label_pool(distiller, opts, None)
    assert torch.equal(again.images, pool.images)  # same seed, same pool


def test_a_distiller_given_the_teachers_targets_computes_the_same_loss(teacher_file):
    from compressbench.distillation.losses import Distiller

    teacher = load_model(str(teacher_file)).eval()
    student = load_model("squeeze-unet-0.5", weights="random")
    example = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    distiller = Distiller(teacher, student, "l3", example=example[:1]).eval()
    targets = distiller.teacher_targets(example)
    assert sorted(targets) == ["encoded", "heatmap", "jacobian", "value"]
    with torch.no_grad():
        fresh, fresh_terms = distiller(example)
        given, given_terms = distiller(example, targets)
    assert torch.equal(fresh, given) and fresh_terms == given_terms


def test_training_on_a_pool_learns_and_resumes_bit_identically(teacher_file, tmp_path):
    common = dict(pool=8, val_every=3)
    straight, result, _ = distill(options(teacher_file, steps=6, checkpoint=tmp_path / "full.pt", **common))
    distill(options(teacher_file, steps=3, checkpoint=tmp_path / "half.pt", **common))
    resumed, resumed_result, _ = distill(
        options(teacher_file, steps=6, checkpoint=tmp_path / "resumed.pt", resume=tmp_path / "half.pt", **common)
    )
    a, b = student_state(straight), student_state(resumed)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert resumed_result.history == result.history
    learned = distill(options(teacher_file, steps=20, val_every=2, pool=8))[1].history
    losses = [row["loss"] for row in learned]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    meta = torch.load(tmp_path / "full.pt", weights_only=True)["meta"]
    assert meta["pool"] == 8 and meta["lr_schedule"] == "constant"


def test_the_learning_rate_schedule_changes_the_steps(teacher_file):
    cosine = student_state(distill(options(teacher_file, steps=3, lr_schedule="cosine"))[0])
    constant = student_state(distill(options(teacher_file, steps=3))[0])
    assert not all(torch.equal(cosine[name], constant[name]) for name in cosine)


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (dict(pool=-1), "--pool must be zero (fresh frames every step) or a positive frame count, got -1"),
        (dict(lr_schedule="step"), "unknown learning-rate schedule 'step'; known: constant, cosine"),
    ],
)
def test_bad_pool_or_schedule_is_one_clear_error(teacher_file, changes, fragment):
    with pytest.raises(CompressbenchError) as caught:
        distill(options(teacher_file, **changes))
    assert fragment in str(caught.value)
