"""Teacher training end to end on a reduced detector and small frames."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from compressbench.data import synthetic_frames
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig
from compressbench.provenance import load_model
from compressbench.training.checkpoints import load_training_checkpoint
from compressbench.training.teacher import (
    TeacherTrainOptions,
    build_initial_teacher,
    evaluate_teacher,
    teacher_batch_source,
    train_teacher,
)
from compressbench.training.teacher_losses import TeacherLossWeights

REDUCED = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
SIZE = 64  # the detector down-samples by 4: 64 -> 16, then 3 pooling levels -> 2


def options(tmp_path, **overrides) -> TeacherTrainOptions:
    base = dict(steps=4, batch=4, lr=3e-3, size=SIZE, detector=REDUCED, val_frames=8, val_every=2,
                lr_schedule="constant", out=tmp_path / "teacher.pt", progress=False)
    return TeacherTrainOptions(**{**base, **overrides})


def test_a_short_run_learns_the_landmarks(tmp_path):
    supervised = TeacherLossWeights(equivariance_value=0, equivariance_jacobian=0)  # equivariance: tests below
    opts = options(tmp_path, steps=20, val_every=10, batch=8, weights=supervised)
    val = synthetic_frames(8, split="val", seed=0, size=SIZE)
    before = evaluate_teacher(build_initial_teacher(opts), val)
    result = train_teacher(opts)
    assert [row["step"] for row in result.history] == [10, 20]
    after = evaluate_teacher(result.model, val)
    assert after["landmark_error_px"] == pytest.approx(result.best_value, rel=1e-5)
    assert after["landmark_error_px"] < 0.75 * before["landmark_error_px"]
    assert after["heatmap_peak"] > 2 * before["heatmap_peak"]


def test_checkpoint_loads_with_load_model(tmp_path):
    result = train_teacher(options(tmp_path))
    loaded = load_model("teacher", checkpoint=tmp_path / "teacher.pt", config=REDUCED)
    images = synthetic_frames(2, split="test", size=SIZE).images
    with torch.no_grad():
        assert torch.equal(loaded(images)["value"], result.model.eval()(images)["value"])
    payload = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert payload["meta"]["detector_config"] == REDUCED.to_dict() and payload["best"]["metric"] == "landmark_error_px"


def test_half_run_plus_resume_is_bit_identical(tmp_path):
    train_teacher(options(tmp_path, out=tmp_path / "full.pt"))
    train_teacher(options(tmp_path, steps=2, out=tmp_path / "half.pt"))
    train_teacher(options(tmp_path, out=tmp_path / "resumed.pt", resume=tmp_path / "half.pt"))
    full, resumed = load_training_checkpoint(tmp_path / "full.pt"), load_training_checkpoint(tmp_path / "resumed.pt")
    assert full["step"] == resumed["step"] == 4
    for name, tensor in full["last"].items():
        assert torch.equal(tensor, resumed["last"][name]), name
    assert full["history"] == resumed["history"]


def test_batches_are_a_function_of_seed_and_index(tmp_path):
    batch_at = teacher_batch_source(options(tmp_path))
    a, b, c = batch_at(3), batch_at(3), batch_at(4)
    assert torch.equal(a.images, b.images) and torch.equal(a.warp.theta, b.warp.theta)
    assert not torch.equal(a.images, c.images) and not torch.equal(a.warp.theta, c.warp.theta)
    other_seed = teacher_batch_source(options(tmp_path, seed=1))(3)
    assert not torch.equal(a.images, other_seed.images)
    assert a.images.shape == (4, 3, SIZE, SIZE) and a.landmarks.shape == (4, 10, 2)


def test_user_frames_train_by_equivariance_alone(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        iio.imwrite(folder / f"{index}.png", (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8))
    result = train_teacher(options(tmp_path, data=str(folder), steps=2, val_every=1, val_frames=2))
    assert [sorted(row) for row in result.history] == [["equivariance_px", "loss", "step"]] * 2
    assert load_training_checkpoint(tmp_path / "teacher.pt")["meta"]["loss_weights"]["keypoint"] == 0.0
    with pytest.raises(CompressbenchError, match="has 6 frames; training needs more than --val-frames"):
        train_teacher(options(tmp_path, data=str(folder), val_frames=6))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"data": "no/such/folder"}, "neither 'synthetic' nor an existing"),
        ({"steps": 0}, "--steps must be a positive integer"),
        ({"lr": 0.0}, "--lr must be positive"),
        ({"seed": -1}, "--seed must be zero or a positive integer"),
        ({"lr_schedule": "linear"}, "unknown learning-rate schedule 'linear'; known: constant, cosine"),
        ({"weights": TeacherLossWeights(keypoint=-1.0)}, "loss weights must be zero or positive"),
    ],
)
def test_bad_options_are_rejected_before_work(tmp_path, overrides, message):
    with pytest.raises(CompressbenchError, match=message):
        train_teacher(options(tmp_path, **overrides))
